"""The ``hwsim llm`` subcommand: a language model's prefill and decode cost on a device, and its quality."""

from __future__ import annotations

import argparse
import json

DEFAULT_RECIPE = "int4_w_per_group32_a16"


def run_llm(args: argparse.Namespace) -> int:
    """Print the cost of ``args.model`` on ``args.device`` under ``args.recipe`` (and its quality)."""
    from hwsim.devices.options import device_from_args
    from hwsim.errors import ConfigError
    from hwsim.llm.config import load_lm_config
    from hwsim.llm.cost import lm_cost
    from hwsim.llm.graphs import Precision
    from hwsim.llm.quantize import check_lm_recipe
    from hwsim.quant.recipe import load_recipe

    for flag, value in (("--prefill", args.prefill), ("--kv-len", args.kv_len), ("--windows", args.windows)):
        if value < 1:
            raise ConfigError(f"{flag}: expected a positive number of tokens (got {value})")
    spec = load_lm_config(args.model)
    recipe = load_recipe(args.recipe)
    check_lm_recipe(recipe)
    print(
        f"{spec.name}: {spec.parameters() / 1e6:,.1f} M parameters, {spec.layers} layers, width "
        f"{spec.hidden}, {spec.heads} heads / {spec.kv_heads} KV heads, FFN {spec.ffn} ({spec.ffn_kind}); "
        f"recipe {recipe.name}"
    )
    device = device_from_args(args)
    if args.performance_model:
        from hwsim.devices.model import override

        device = override(device, {"performance_model": args.performance_model})
    cost = lm_cost(spec, device, Precision.of_recipe(recipe), prefill_tokens=args.prefill, kv_len=args.kv_len)
    print(cost.table())
    row = cost.as_row()
    if args.quality:
        from hwsim.llm.quality import evaluate_lm

        q = evaluate_lm(spec, recipe, windows_count=args.windows)
        print(
            f"quality on {q.tokens} held-out tokens ({q.path} path): perplexity {q.perplexity:.4f} "
            f"(float {q.float_perplexity:.4f}), next-token agreement with float {q.agreement:.2%}"
        )
        row.update(q.as_row())
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(row, f, indent=2)
        print(f"wrote {args.output}")
    return 0


def add_parser(sub) -> None:
    """Register ``hwsim llm`` on the CLI's subparsers."""
    from hwsim.devices.options import add_device_options

    p = sub.add_parser(
        "llm",
        help="a language model's time to first token, decode tokens/s, energy per "
        "token and bandwidth bound on a device (and its integer-path quality)",
    )
    p.add_argument(
        "model",
        help="an LM .yaml, a Hugging Face config.json, or a shipped name (stdlib_lm, "
        "llama_3_2_1b, qwen2_5_0_5b)",
    )
    add_device_options(p)
    p.add_argument(
        "--recipe",
        default=DEFAULT_RECIPE,
        help=f"an LM quantization preset or recipe .yaml (default {DEFAULT_RECIPE})",
    )
    p.add_argument("--prefill", type=int, default=128, help="prompt tokens of the prefill (default 128)")
    p.add_argument(
        "--kv-len", type=int, default=1024, help="cached positions a decode step reads (default 1024)"
    )
    p.add_argument(
        "--performance-model",
        default=None,
        help="time the graphs with this performance model instead of the device's (hwsim: hwsim's "
        "mapper, e.g. for Ethos-U devices, whose vela-5.2 model encodes every weight: "
        "minutes per LLM layer until the weight cache holds them)",
    )
    p.add_argument(
        "--quality",
        action="store_true",
        help="also measure perplexity and next-token agreement (models with weights: stdlib_lm)",
    )
    p.add_argument("--windows", type=int, default=32, help="evaluation windows of --quality (default 32)")
    p.add_argument("--output", default=None, help="also write the figures to this .json")
    p.set_defaults(func=run_llm)
