"""What a language model costs on a device: time to first token, decode tokens/s, energy per token, bytes
per token and the bandwidth bound they imply.

Both phases are simulated (:func:`hwsim.schedule.simulate.simulate` on the graphs of :mod:`hwsim.llm.graphs`)
and priced (:func:`hwsim.energy.account.account`). Decode streams every weight and the whole KV cache once per
token, so its speed is bounded by ``offchip bandwidth / (weight bytes + KV bytes per token)``; the report
gives that bound beside the simulated rate, so the distance between them is the schedule's overhead
(DMA latency, vector ops, the MAC array's own time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hwsim.devices.model import Device, load_device
from hwsim.errors import ConfigError
from hwsim.llm.config import LMSpec
from hwsim.llm.graphs import Precision, decode_graph, prefill_graph
from hwsim.schedule.mapper import precision_of, tensor_bytes
from hwsim.workload.opdefs import MAC_OPS, schedule_kind


@dataclass(frozen=True)
class LMCost:
    """One (model, device, precision, prompt length, cache length) point."""

    model: str
    device: str
    weights_bits: int
    group_size: int | None
    activations_bits: int
    kv_bits: int
    prefill_tokens: int
    kv_len: int
    ttft_ms: float
    prefill_tokens_per_s: float
    decode_ms: float
    decode_tokens_per_s: float
    prefill_energy_uj: float
    energy_per_token_uj: float
    weight_bytes_per_token: int
    kv_bytes_per_token: int
    offchip_gbytes_per_s: float
    bound_tokens_per_s: float
    decode_dram_energy_share: float
    energy_source: str

    def as_row(self) -> dict:
        """The point as a flat dict (a results-table row)."""
        return asdict(self)

    def table(self) -> str:
        """A short human-readable report."""
        g = f"g{self.group_size}" if self.group_size else "per-channel"
        bits = f"W{self.weights_bits} {g}, A{self.activations_bits}, KV{self.kv_bits}"
        return "\n".join(
            [
                f"{self.model} on {self.device}: {bits}",
                f"  prefill {self.prefill_tokens} tokens: time to first token {self.ttft_ms:.2f} ms "
                f"({self.prefill_tokens_per_s:,.0f} tokens/s), {self.prefill_energy_uj:,.1f} uJ",
                f"  decode at KV length {self.kv_len}: {self.decode_ms:.3f} ms/token = "
                f"{self.decode_tokens_per_s:.1f} tokens/s, {self.energy_per_token_uj:,.1f} uJ/token "
                f"(DRAM {self.decode_dram_energy_share:.0%})",
                f"  bytes per token: weights {self.weight_bytes_per_token:,}, "
                f"KV cache {self.kv_bytes_per_token:,}; "
                f"at {self.offchip_gbytes_per_s:.1f} GB/s the bound is "
                f"{self.bound_tokens_per_s:.1f} tokens/s "
                f"(simulated {self.decode_tokens_per_s / self.bound_tokens_per_s:.0%} of it)",
            ]
        )


def bytes_per_token(graph) -> tuple[int, int]:
    """(weight bytes, KV-cache bytes) one pass of ``graph`` reads or writes: parameters and their scales;
    the cache read (graph inputs ``k_cache`` / ``v_cache``) and the new positions written (``k_new`` /
    ``v_new``), scales included."""
    cache = {n for n in graph.inputs + graph.outputs if n.startswith(("k_", "v_"))}
    weights = sum(tensor_bytes(t) for t in graph.tensors.values() if t.is_parameter)
    kv = sum(tensor_bytes(graph.tensors[n]) for n in cache)
    return weights, kv


def lm_cost(
    spec: LMSpec,
    device: Device | str,
    prec: Precision = Precision(),
    *,
    prefill_tokens: int = 128,
    kv_len: int = 1024,
    energy: dict | None = None,
) -> LMCost:
    """Simulate and price prefill of ``prefill_tokens`` and one decode step at ``kv_len`` cached positions."""
    from hwsim.energy.account import account
    from hwsim.energy.model import DEFAULT_ENERGY_MODEL, EnergyModel
    from hwsim.schedule.simulate import simulate

    device = device if isinstance(device, Device) else load_device(device)
    energy = energy or {}
    model = EnergyModel.for_device(
        device,
        energy.get("table") or DEFAULT_ENERGY_MODEL,
        node_nm=energy.get("node_nm"),
        voltage_v=energy.get("voltage_v"),
    )
    pre_graph, dec_graph = prefill_graph(spec, prefill_tokens, prec), decode_graph(spec, kv_len, prec)
    for phase, graph in (("prefill", pre_graph), ("decode", dec_graph)):
        _check_mac_pairs(phase, graph, device)
    pre, dec = (simulate(g, device, record_trace=False) for g in (pre_graph, dec_graph))  # no peak power
    pre_e, dec_e = account(pre, model), account(dec, model)
    w_bytes, kv_bytes = bytes_per_token(dec_graph)
    bandwidth = device.offchip_bytes_per_s
    dram = dec_e.by_category().get("dram", 0.0)
    return LMCost(
        spec.name,
        device.name,
        prec.weights_bits,
        prec.group_size,
        prec.activations_bits,
        prec.kv_bits,
        prefill_tokens,
        kv_len,
        pre.time_ms,
        prefill_tokens / (pre.time_ms / 1e3),
        dec.time_ms,
        1e3 / dec.time_ms,
        pre_e.total_pj / 1e6,
        dec_e.total_pj / 1e6,
        w_bytes,
        kv_bytes,
        bandwidth / 1e9,
        bandwidth / (w_bytes + kv_bytes),
        dram / dec_e.total_pj,
        model.describe(),
    )


def _check_mac_pairs(phase: str, graph, device: Device) -> None:
    """Refuse, before minutes of simulation, a graph whose products the device's MAC array cannot take
    (a float16 KV cache needs 16x16 products; the energy table would refuse them after the simulation)."""
    array = device.spec.mac_array.name
    for op in graph.ops:
        kind = schedule_kind(op.kind)
        if kind in MAC_OPS and device.unit_for(kind) == array:
            w_bits, a_bits, _ = precision_of(graph, op)
            try:
                device.precision(w_bits, a_bits)
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc} (needed by the {phase} op {op.name!r}; a recipe with 8-bit "
                    f"activations and KV cache fits an 8-bit array)"
                ) from None
