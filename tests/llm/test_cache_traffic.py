"""The KV cache, an activation (a graph input) in the attention matmuls' second operand, is read from DRAM
and timed: the mapper once took a matmul's operands' home from the first one alone, so a cache in DRAM
beside an on-chip query cost no cycles and no DRAM reads."""

from hwsim.devices.model import load_device
from hwsim.llm.config import load_lm_config
from hwsim.llm.graphs import Precision, decode_graph
from hwsim.schedule.mapper import assign_homes, tensor_bytes
from hwsim.schedule.simulate import simulate


def test_decode_reads_the_cache_from_dram():
    spec = load_lm_config("llama_3_2_1b").model_copy(update={"layers": 1})
    graph = decode_graph(spec, 4096, Precision(4, 32, 16, 8))
    device = load_device("hexagon_like")
    homes = assign_homes(graph, device)
    assert homes["k_cache.0"] == homes["v_cache.0"] == 0 < homes["layers.0.rope_q.out"]  # DRAM; VTCM
    layers = {layer.op: layer for layer in simulate(graph, device, record_trace=False).layers}
    ddr = device.levels[0]
    for op, cache in (("layers.0.scores", "k_cache.0"), ("layers.0.context", "v_cache.0")):
        nbytes = sum(tensor_bytes(graph.tensors[n]) for n in (cache, cache + ".scales"))
        assert layers[op].cycles >= nbytes / ddr.read_bandwidth_bytes_per_cycle
        ddr_read = sum(n * bits // 8 for (c, a, bits), n in layers[op].counts if (c, a) == ("ddr", "read"))
        assert ddr_read >= nbytes
