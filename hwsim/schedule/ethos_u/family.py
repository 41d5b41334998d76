"""One interface over the two Ethos-U generations the scheduler times: U55/U65 and U85.

The scheduler asks the same questions of either (a block config, an op's cycles and traffic, a DMA's
duration, a read's minimum time, how to encode the weights); the U55/U65 answers come from :mod:`.blocks`
and :mod:`.estimator`, the U85 ones (:mod:`.family_u85`) from :mod:`.blocks_u85` and :mod:`.estimator_u85`,
which also account for the U85's memory channels, op groups and weight formats; they are imported only for a
U85.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from hwsim.schedule.ethos_u import blocks
from hwsim.schedule.ethos_u import estimator as est
from hwsim.schedule.ethos_u.arch import ACCELERATORS
from hwsim.schedule.ethos_u.geometry import Kernel
from hwsim.schedule.ethos_u.weight_encoding import EncodedWeights, EncodingParams, u55_encoding_params


class U55Family:
    """Ethos-U55 and U65 (Vela's EthosU55 architecture and performance classes)."""

    name = "u55"
    min_depth_granule = 16  # Vela's MinimumDepthGranule: the OFM split depth
    memo_limit = 1 << 16  # estimates kept per family before the memo starts afresh

    def __init__(self, arch) -> None:
        self.arch = arch
        # query_key -> answer: every candidate schedule re-costs its ops, and a sweep re-plans the same ops
        self._cycles: dict[tuple, tuple[int, int]] = {}
        self._access: dict[tuple, est.ElementAccess] = {}
        self._configs: dict[blocks.BlockQuery, blocks.BlockConfig] = {}
        self._traffic: dict[tuple, tuple] = {}
        # the scheduler's lookup of the same configs by its ops' values (Scheduler.block_config)
        self.op_configs: dict[tuple, blocks.BlockConfig] = {}
        # the scheduler's encodings and their parameters, by value (Scheduler.encode)
        self.params: dict[tuple, EncodingParams] = {}
        self.encodings: dict[tuple, EncodedWeights | None] = {}
        # the scheduler's per-op decisions and sliced estimates, by op_key (Scheduler.op_info, sliced_perf)
        self.op_infos: dict[tuple, tuple] = {}
        self.sliced_perfs: dict[tuple, object] = {}

    def block_config(self, q: blocks.BlockQuery) -> blocks.BlockConfig:
        """The block config Vela picks (memoised: every schedule asks again for the same stripes)."""
        config = self._configs.get(q)
        if config is None:
            if len(self._configs) >= self.memo_limit:
                self._configs.clear()
            config = self._configs[q] = self._block_config(q)
        return config

    def _block_config(self, q: blocks.BlockQuery) -> blocks.BlockConfig:
        if q.op_type == "Transpose":  # a transpose searches on its unpermuted output
            q = replace(q, ofm_shape=q.ifm_shape)
        return blocks.find_block_config(self.arch, q)

    def remember(self, memo: dict, key: tuple, value):
        """``value``, kept in ``memo`` under ``key`` (the memo starts afresh when full)."""
        if len(memo) >= self.memo_limit:
            memo.clear()
        memo[key] = value
        return value

    def op_cycles(self, q: est.PerfQuery) -> tuple[int, int]:
        """NPU cycles and MACs (memoised on :func:`~.estimator.query_key`)."""
        key = est.query_key(q)
        answer = self._cycles.get(key)
        if answer is None:
            if len(self._cycles) >= self.memo_limit:
                self._cycles.clear()
            answer = self._cycles[key] = self._op_cycles(q)
        return answer

    def element_access(self, q: est.PerfQuery) -> est.ElementAccess:
        """Elements each operand moves (memoised: equal queries share one answer, which callers only read)."""
        key = est.query_key(q)
        answer = self._access.get(key)
        if answer is None:
            if len(self._access) >= self.memo_limit:
                self._access.clear()
            answer = self._access[key] = self._element_access(q)
        return answer

    def traffic(self, q: est.PerfQuery) -> tuple[est.ElementAccess, dict[str, tuple[est.Memory, int, int]]]:
        """Bytes each operand moves and, per memory, (memory, bytes, access cycles) (memoised on
        :func:`~.estimator.query_key`, as the estimates are: callers only read them)."""
        key = est.query_key(q)
        answer = self._traffic.get(key)
        if answer is None:
            if len(self._traffic) >= self.memo_limit:
                self._traffic.clear()
            nbytes = self.to_bytes(q, self.element_access(q))
            answer = self._traffic[key] = (nbytes, self.access_cycles(q, nbytes))
        return answer

    def _op_cycles(self, q: est.PerfQuery) -> tuple[int, int]:
        return est.op_cycles(self.arch, q)

    def _element_access(self, q: est.PerfQuery) -> est.ElementAccess:
        return est.element_access(self.arch, q)

    def to_bytes(self, q: est.PerfQuery, access: est.ElementAccess) -> est.ElementAccess:
        """Bytes moved, bursts included."""
        return est.to_bytes(self.arch, q, access)

    def access_cycles(
        self, q: est.PerfQuery, nbytes: est.ElementAccess
    ) -> dict[str, tuple[est.Memory, int, int]]:
        """Per memory: (memory, bytes, access cycles)."""
        return est.access_cycles(q, nbytes)

    def mem_to_mem(self, dst: est.Memory, src: est.Memory, nbytes: int) -> int:
        """Cycles of a DMA copy."""
        return est.mem_to_mem_cycles(dst, src, nbytes)

    def min_read(
        self, memory: est.Memory, nbytes: float, weights: bool = False, op_type: str = "", fast: bool = False
    ) -> int:
        """Cycles to read ``nbytes`` of weights or of an ``op_type`` op's IFM, latency included
        (MinReadCycles)."""
        return int(nbytes / memory.bandwidth + memory.read_latency)

    def min_depth(self, config: blocks.BlockConfig) -> int:
        """The smallest depth slice of a weight stream."""
        return self.min_depth_granule

    def encoding_params(
        self,
        config: blocks.BlockConfig,
        ifm_bits: int,
        kernel: Kernel,
        fast: bool = False,
        sparse: bool = False,
    ) -> EncodingParams:
        """What Vela's weight encoder keys on for an op with this block config (GetEncodingConfig)."""
        return u55_encoding_params(self.arch, config, ifm_bits, kernel)

    def weight_formats(self, op_type: str) -> tuple[str, ...]:
        """Weight formats other than the default the op may use (SupportedWeightFormat): none."""
        return ()

    def lut_transfer(self, source: est.Memory, ifm_bits: int) -> int:
        """Cycles to load a LUT op's table: not modelled on U55/U65 (Vela copies it into the SHRAM; no
        benchmark runs a LUT op on its own, so the table sizes there are unverified)."""
        return 0


@lru_cache(maxsize=None)
def family(accelerator: str) -> U55Family:
    """The family object of an accelerator config name (``ethos-u55-128``, ``ethos-u85-256`` ...), one per
    name, so that its memoised estimates serve every network planned on that accelerator."""
    if accelerator in ACCELERATORS:
        return U55Family(ACCELERATORS[accelerator])
    from hwsim.schedule.ethos_u.arch_u85 import U85_ACCELERATORS
    from hwsim.schedule.ethos_u.family_u85 import U85Family

    return U85Family(U85_ACCELERATORS[accelerator])
