"""The Ethos-U85 side of :mod:`.family`, in a module of its own so that U55/U65 runs never import it."""

from __future__ import annotations

from hwsim.schedule.ethos_u import blocks, blocks_u85
from hwsim.schedule.ethos_u import estimator as est
from hwsim.schedule.ethos_u import estimator_u85 as est85
from hwsim.schedule.ethos_u.family import U55Family
from hwsim.schedule.ethos_u.geometry import Kernel
from hwsim.schedule.ethos_u.weight_encoding import EncodedWeights, EncodingParams
from hwsim.schedule.ethos_u.weight_format import WeightChannel, use_fast_decoder

U85_LUT_BYTES = {8: 256, 16: 2048}  # a LUT's table in the constant memory, by IFM bits


class U85Family(U55Family):
    """Ethos-U85 (Vela's EthosU85 architecture and performance classes)."""

    name = "u85"

    def __init__(self, arch) -> None:
        super().__init__(arch)
        # the U85's channel arithmetic, asked again by every schedule with the same values
        self._transfers: dict[tuple, int] = {}
        self._reads: dict[tuple, int] = {}
        self._decodes: dict[tuple, int] = {}
        self._fast: dict[tuple, bool] = {}

    def _block_config(self, q: blocks.BlockQuery) -> blocks.BlockConfig:
        return blocks_u85.find_block_config(self.arch, q)

    def _op_cycles(self, q: est.PerfQuery) -> tuple[int, int]:
        return est85.op_cycles(self.arch, q)

    def _element_access(self, q: est.PerfQuery) -> est.ElementAccess:
        return est85.element_access(self.arch, q)

    def to_bytes(self, q: est.PerfQuery, access: est.ElementAccess) -> est.ElementAccess:
        return est85.to_bytes(self.arch, q, access)

    def access_cycles(
        self, q: est.PerfQuery, nbytes: est.ElementAccess
    ) -> dict[str, tuple[est.Memory, int, int]]:
        return {
            name: (a.memory, a.bytes, a.cycles)
            for name, a in est85.access_cycles(self.arch, q, nbytes).items()
        }

    def mem_to_mem(self, dst: est.Memory, src: est.Memory, nbytes: int) -> int:
        key = (dst.key, src.key, nbytes)
        cycles = self._transfers.get(key)
        if cycles is None:
            cycles = self.remember(self._transfers, key, est85.mem_to_mem_cycles(self.arch, dst, src, nbytes))
        return cycles

    def min_read(
        self, memory: est.Memory, nbytes: float, weights: bool = False, op_type: str = "", fast: bool = False
    ) -> int:
        """Through the op's channel: weights (fast weights), or the IFM or IFM-stream channel
        (LookupChannel)."""
        key = (memory.key, nbytes, weights, fast, op_type)
        cycles = self._reads.get(key)
        if cycles is None:
            if weights:
                channel = est85.FAST_WEIGHT if fast else est85.WEIGHT
            else:
                channel = est85._read_channel(op_type, 0)
            cycles = est85.min_read_cycles(self.arch, memory, nbytes, channel)
            self.remember(self._reads, key, cycles)
        return cycles

    def min_depth(self, config: blocks.BlockConfig) -> int:
        """The larger of 16 and the OFM micro-block's depth (EthosU85OpConfig::MinimumDepthGranule)."""
        return max(16, config.ofm_ublock[2])

    def encoding_params(
        self,
        config: blocks.BlockConfig,
        ifm_bits: int,
        kernel: Kernel,
        fast: bool = False,
        sparse: bool = False,
    ) -> EncodingParams:
        """Micro-block, OFM and IFM block depths, traversal, MACs and stride
        (EthosU85WeightEncoder::GetEncodingConfig)."""
        return EncodingParams(
            "u85",
            self.arch.cores,
            config.ofm_block[2],
            config.traversal,
            ifm_bits,
            (kernel.dilation_x, kernel.dilation_y),
            ofm_ublock_depth=config.ofm_ublock[2],
            ifm_block_depth=config.ifm_block[2],
            macs=self.arch.macs,
            stride=(kernel.stride_x, kernel.stride_y),
            fast=fast,
            sparse=sparse,
        )

    def weight_formats(self, op_type: str) -> tuple[str, ...]:
        """Convolutions on the MAC array other than MatMul may use fast and 2:4 sparse weights
        (SupportedWeightFormat)."""
        if blocks_u85.hw_op(op_type) == blocks_u85.CONV and op_type != "MatMul":
            return ("fast", "sparse")
        return ()

    def use_fast_decoder(self, default: EncodedWeights, memory: est.Memory) -> bool:
        """Whether the fast format is worth encoding, judged from the default stream (UseFastDecoder)."""
        key = (default, memory.key)
        fast = self._fast.get(key)
        if fast is None:
            channels = [
                WeightChannel(est85.channel_bandwidth(self.arch, memory, c), memory.read_latency)
                for c in (est85.WEIGHT, est85.FAST_WEIGHT)
            ]
            fast = self.remember(self._fast, key, use_fast_decoder(default, self.arch.cores, *channels))
        return fast

    def weight_decode_cycles(self, weights: EncodedWeights, fast: bool, memory: est.Memory) -> int:
        """Cycles to stream and decode the weights from ``memory`` (WeightDecodeCycles)."""
        key = (weights, fast, memory.key)
        cycles = self._decodes.get(key)
        if cycles is None:
            cycles = est85.weight_decode_cycles(
                self.arch,
                weights.total_source_bytes,
                weights.total_weight_bytes,
                weights.zero_count,
                weights.distinct_weights,
                fast,
                memory,
            )
            self.remember(self._decodes, key, cycles)
        return cycles

    def lut_transfer(self, source: est.Memory, ifm_bits: int) -> int:
        """Cycles to copy a LUT op's table from ``source`` into the LUT RAM (EstimateFullOpPerformance)."""
        return est85.mem_to_mem_cycles(self.arch, est85.LUT_MEMORY, source, U85_LUT_BYTES[ifm_bits])
