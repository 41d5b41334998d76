"""Language-model configs: hwsim's YAML and Hugging Face config.json, their errors, and the CLI's."""

import json

import pytest

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.llm.config import load_lm_config


def test_shipped_llama_matches_its_published_size():
    """Llama 3.2 1B's shape gives its published 1.24 B parameters (tied embeddings counted once)."""
    spec = load_lm_config("llama_3_2_1b")
    shape = (spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.dim, spec.group)
    assert shape == (16, 2048, 32, 8, 64, 4)
    assert spec.parameters() == 1_235_814_400


def test_hf_config_json_is_read():
    """A Qwen2.5-0.5B config.json (a folder given by name) becomes a SwiGLU, RMSNorm, GQA spec of 494 M."""
    spec = load_lm_config("qwen2_5_0_5b")
    assert (spec.name, spec.family, spec.ffn_kind, spec.norm) == ("qwen2_5_0_5b", "qwen", "swiglu", "rmsnorm")
    shape = (spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.ffn, spec.vocab)
    assert shape == (24, 896, 14, 2, 4864, 151936)
    assert spec.tie_embeddings and spec.rope_theta == 1e6 and spec.norm_eps == 1e-6
    assert spec.parameters() == 494_032_768


def test_gemma_and_phi_families(tmp_path):
    """Gemma's gated GELU (tied, head_dim given) and Phi-2's GELU MLP with LayerNorm map to their kinds."""
    gemma = {
        "model_type": "gemma",
        "num_hidden_layers": 18,
        "hidden_size": 2048,
        "num_attention_heads": 8,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "intermediate_size": 16384,
        "vocab_size": 256000,
    }
    (tmp_path / "gemma").mkdir()
    (tmp_path / "gemma" / "config.json").write_text(json.dumps(gemma))
    spec = load_lm_config(tmp_path / "gemma")
    assert (spec.ffn_kind, spec.dim, spec.group, spec.tie_embeddings) == ("geglu", 256, 8, True)
    phi = {
        "model_type": "phi",
        "num_hidden_layers": 32,
        "hidden_size": 2560,
        "num_attention_heads": 32,
        "intermediate_size": 10240,
        "vocab_size": 51200,
    }
    (tmp_path / "phi.json").write_text(json.dumps(phi))
    spec = load_lm_config(tmp_path / "phi.json")
    assert (spec.ffn_kind, spec.norm, spec.kv_heads) == ("gelu", "layernorm", 32)


def test_yaml_error_names_file_line_and_field(tmp_path):
    """KV heads that do not divide the query heads: the error names the file, line and field."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "schema_version: 1\nname: bad\nlayers: 2\nhidden: 64\nheads: 4\nkv_heads: 3\nffn: 128\nvocab: 10\n"
    )
    with pytest.raises(ConfigError, match=r"bad.yaml:6: kv_heads: must divide heads \(4\)"):
        load_lm_config(path)


def test_hf_errors(tmp_path):
    """An unknown model_type and a missing key are one-line errors naming the file and the key."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match=r"model_type: hwsim reads .*llama.* \(got 'bert'\)"):
        load_lm_config(path)
    path.write_text(json.dumps({"model_type": "llama", "num_attention_heads": 4}))
    with pytest.raises(ConfigError, match=r"config.json: num_hidden_layers: required field is missing"):
        load_lm_config(path)


def test_cli_errors_exit_2(capsys):
    """Bad CLI input prints one hwsim error line and exits 2."""
    assert main(["llm", "llama_3_2_1b", "--device", "hexagon_like", "--kv-len", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hwsim: error: --kv-len: expected a positive number of tokens (got 0)"
    assert main(["llm", "no_such_model", "--device", "hexagon_like"]) == 2
    assert "is neither a file nor a language model" in capsys.readouterr().err
    assert main(["llm", "stdlib_lm", "--device", "hexagon_like", "--recipe", "int8_w_per_channel"]) == 2
    assert "activations.dynamic: LM activations take a scale per token" in capsys.readouterr().err
    # refused before simulating (it used to fail in the energy table after minutes of Ethos-U encoding)
    assert main(["llm", "llama_3_2_1b", "--device", "ethos_u85_256_like"]) == 2
    err = capsys.readouterr().err
    assert "no operand pair covers 16-bit weights x 16-bit activations" in err
    assert "needed by the prefill op 'layers.0.scores'" in err
