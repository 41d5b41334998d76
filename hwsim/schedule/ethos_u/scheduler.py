"""Vela 5.2.0's scheduling decisions for Ethos-U: block configs, weight buffering, memory placement.

For every op the scheduler picks a block config for the OFM it computes and encodes the op's weights for
that config (``Scheduler::CreateSchedulerOpInfo``); on U85 it encodes them in the format that decodes and
runs fastest (default, fast or 2:4 sparse), and schedules each op group as one op, its primary, with the
ops chained into it and its fused activations estimated together (``PerformanceQuery`` with the group's
feature-map records); maps passed within a group take no memory. It then decides, op by op in execution order,
whether to copy the weights into the staging SRAM ahead of use and in how many depth slices
(``ProposeWeightBuffering`` / ``ProposeSlicedWeightBuffering``): a copy pays off when reading the weights from
where they live (flash, DRAM) would be slower than the copy, which can run under the previous op (its *slack*
cycles) and, sliced, under the op's own earlier slices. Everything here is computed from the op list, the
accelerator config and the memory system; no number is fitted. Source: ``ethosu/regor/compiler/scheduler.cpp``
of ethos-u-vela 5.2.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hwsim.schedule.ethos_u import estimator as est
from hwsim.schedule.ethos_u.blocks import BlockConfig, BlockQuery
from hwsim.schedule.ethos_u.cascades import CascadeBuilder, CascadeInfo
from hwsim.schedule.ethos_u.family import U55Family
from hwsim.schedule.ethos_u.geometry import Shape, div_up, elements, required_input_size, round_down, round_up
from hwsim.schedule.ethos_u.ir import VConn, VOp, VTensor
from hwsim.schedule.ethos_u.live_ranges import LiveRangeGraph, LRMemory, WeightBuffer, op_structure
from hwsim.schedule.ethos_u.lowering import transpose_type
from hwsim.schedule.ethos_u.system import MemorySystem
from hwsim.schedule.ethos_u.value_ids import value_id
from hwsim.schedule.ethos_u.weight_encoding import (
    EncodedWeights,
    WeightsNotSparse,
    WeightSource,
    encode_scales,
    encode_source,
    weights_source,
)

if TYPE_CHECKING:  # the U85's modules load only when a U85 is scheduled
    from hwsim.schedule.ethos_u.estimator_u85 import GroupOp

OFM_SPLIT_DEPTH = 16
STARTUP_DELAY_CYCLES = 1000
CONVOLUTIONS = frozenset({"Conv2D", "DepthwiseConv2D", "FullyConnected"})
DATA_LAYOUT_OPS = frozenset({"Transpose", "MemoryCopy", "Reverse"})  # Vela's IsDataLayout, as lowered here


@dataclass(frozen=True)
class WeightFormat:
    """How an op's weights are encoded: Vela's default format, or U85's fast and/or 2:4 sparse formats."""

    fast: bool = False
    sparse: bool = False


DEFAULT_FORMAT = WeightFormat()
SPARSE_FORMAT = WeightFormat(sparse=True)
# The order Vela tries the formats in (EncodeBestWeightFormat): the first of equally fast ones wins.
FORMAT_ORDER = (
    SPARSE_FORMAT,
    DEFAULT_FORMAT,
    WeightFormat(fast=True, sparse=True),
    WeightFormat(fast=True),
)


@dataclass
class EstimatedPerf:
    """Vela's ``EstimatedPerf``: an op's run and read cycles under a buffering choice."""

    weight_read_bytes: int = 0
    ifm_read_bytes: int = 0
    op_run_cycles: int = 0
    full_run_cycles: int = 0
    ifm_read_cycles: int = 0
    weight_read_cycles: int = 0
    last_slice_cycles: int = 0
    visible_buffer_cycles: int = 0
    ifm_size_bytes: int = 0

    def op_dominated(self) -> bool:
        """The op's own cycles exceed both its weight and its IFM reads."""
        return self.op_run_cycles > self.weight_read_cycles and self.op_run_cycles > self.ifm_read_cycles

    def ifm_ratio(self) -> float:
        """IFM read cycles over weight read cycles."""
        return self.ifm_read_cycles / self.weight_read_cycles if self.weight_read_cycles else 1.0


@dataclass
class OpCost:
    """Vela's ``SchedulerOpInfo``: what the schedule decided for one op."""

    config: BlockConfig
    stripe: Shape
    stripe_input: Shape
    weights: EncodedWeights | None = None
    weight_format: WeightFormat = DEFAULT_FORMAT
    depth_slices: list[int] = field(default_factory=list)
    buffering: str = "None"  # "None", "Single" or "Double"
    buffer_parts: tuple[int, int] = (0, 0)
    prebuffer: bool = False
    full_weight_transfer_cycles: int = 0
    slack_cycles: int = 0
    slack_memory: int = 0
    op_cycles: int = 0
    macs: int = 0
    access: est.ElementAccess | None = None
    perf: EstimatedPerf = field(default_factory=EstimatedPerf)
    stage_weights: bool = False
    stage_ifm: bool = False
    cascade: int = 0
    first_in_cascade: bool = False
    weight_buffers: list[WeightBuffer] = field(default_factory=list)
    ofm_reuses_ifm: bool = False  # in a cascade, the output overwrites the input's rolling buffer
    require_ofm_in_arena: bool = False  # an input-staging copy's output (never moved to SRAM)
    time_index: int = 0

    def weight_buffer_bytes(self) -> int:
        """Staging bytes of the op's weight buffers."""
        return sum(b.size for b in self.weight_buffers)

    @property
    def buffered(self) -> bool:
        """True when the op reads its weights from a copy in staging memory."""
        return self.buffering != "None"

    def sources_cascade_buffer(self) -> bool:
        """True for an op inside a cascade (it reads its IFM from a rolling buffer)."""
        return self.cascade != 0 and not self.first_in_cascade


@dataclass
class Schedule:
    """One candidate schedule: a cost per op (None for CPU ops), its cascades and its SRAM use over time."""

    costs: list[OpCost | None]
    cascades: dict[int, CascadeInfo] = field(default_factory=dict)
    memory: list[LRMemory] = field(default_factory=list)
    peak_bytes: int = 0

    def memory_at(self, time: int) -> LRMemory:
        """The memory in use at a time point (empty outside the schedule)."""
        return self.memory[time] if 0 <= time < len(self.memory) else LRMemory()


class Scheduler:
    """Schedules a lowered op list on one accelerator config and memory system.

    ``ops`` is the lowered list; the schedule is over its primary ops (``ops``), the ops chained into
    them (U85 op groups) running in their primary's pass (``all_ops`` has both).
    """

    def __init__(self, fam: U55Family, memsys: MemorySystem, ops: list[VOp]) -> None:
        self.fam = fam
        self.arch = fam.arch
        self.mem = memsys
        self.all_ops = ops
        self.ops = [op for op in ops if op.parent is None]
        self._sources: dict[int, WeightSource] = {}  # id(op) -> its weights as the encoder keys them
        self._structures = [op_structure(op) for op in self.ops]  # what live ranges read of each op
        self._op_keys: dict[int, int] = {}  # id(op) -> op_key(op); valid as long as _groups is
        # id(op) -> group_ops(op); valid while tensors keep their memory and layout (see apply_cascades)
        self._groups: dict[int, tuple[GroupOp, ...]] = {}

    # -- tensors ------------------------------------------------------------------------------------------
    @staticmethod
    def size_of(t: VTensor) -> int:
        """Allocated bytes of a tensor in its layout."""
        return t.size_bytes()

    @staticmethod
    def requires_full(t: VTensor) -> bool:
        """A map read or written by several ops, the CPU, or outside the graph must exist whole."""
        return (
            len(t.producers) > 1
            or len(t.consumers) > 1
            or t.is_graph_input
            or t.is_graph_output
            or any(not op.npu for op in t.producers + t.consumers)
        )

    @staticmethod
    def copy_cost(cost: OpCost | None) -> OpCost | None:
        """A copy of a cost another schedule may change."""
        if cost is None:
            return None
        out = object.__new__(OpCost)  # a shallow copy, as dataclasses.replace makes but faster
        out.__dict__.update(cost.__dict__)
        out.weight_buffers = list(cost.weight_buffers)
        out.depth_slices = list(cost.depth_slices)
        return out

    def in_staging(self, t: VTensor) -> bool:
        """True when a (non-constant) tensor lives in the staging memory."""
        return not t.is_constant and (t.memory == "staging" or not self.mem.spilling)

    # -- memories -----------------------------------------------------------------------------------------
    def memory(self, t: VTensor) -> est.Memory:
        """The memory a tensor lives in."""
        if t.is_constant:
            return self.mem.const
        return self.mem.staging if t.memory == "staging" else self.mem.arena

    def feature_map(
        self, conn, shape: Shape | None = None, memory: est.Memory | None = None
    ) -> est.FeatureMap:
        """An operand as the estimator sees it."""
        return est.FeatureMap(
            shape or conn.shape, conn.bits, memory or self.memory(conn.tensor), conn.tensor.format
        )

    def group_ops(self, op: VOp) -> tuple[GroupOp, ...]:
        """The op's U85 op group for the estimator, primary first, each op's operands as when it joined.

        A tensor passed within the group (fused or chained) has no memory (InitPerfQuery's feature-map
        records).
        """
        if not op.group:  # no op group: every op on U55 and U65, a lone one on U85
            return ()
        cached = self._groups.get(id(op))
        if cached is None:
            cached = self._groups[id(op)] = self._group_ops(op)
        return cached

    def _group_ops(self, op: VOp) -> tuple[GroupOp, ...]:
        from hwsim.schedule.ethos_u.estimator_u85 import GroupOp

        internal = {id(t) for t in op.internal_tensors()}

        def fm(conn: VConn | None) -> est.FeatureMap | None:
            if conn is None:
                return None
            memory = None if id(conn.tensor) in internal else self.memory(conn.tensor)
            return est.FeatureMap(conn.shape, conn.bits, memory, conn.tensor.format)

        return tuple(
            GroupOp(m.type, fm(m.ifm), fm(m.ofm), fm(m.ifm2), transpose_type(m.perm)) for m in op.group
        )

    def op_key(self, op: VOp) -> int:
        """Everything :meth:`op_info` and :meth:`sliced_perf` read of ``op`` and of the memories, as one
        value id: the families memoise their answers on it, so the next plan (of this network, or of one
        whose op has the same values) finds them (valid while the op's maps keep their memory and
        layout, as :meth:`group_ops`)."""
        key = self._op_keys.get(id(op))
        if key is None:
            weights = None
            if op.weights is not None:
                weights = self._weight_source(op).digest
            mem = self.mem
            key = self._op_keys[id(op)] = value_id(
                (
                    op.type,
                    op.kernel.key,
                    est.map_key(self.feature_map(op.ifm)),
                    est.map_key(self.feature_map(op.ofm)),
                    est.map_key(self.feature_map(op.ifm2)) if op.ifm2 is not None else None,
                    op.activation,
                    op.has_scales,
                    op.uses_lut,
                    op.scaled,
                    op.perm,
                    bool(op.chained),
                    tuple(g.key for g in self.group_ops(op)),
                    weights,
                    (mem.const.key, mem.staging.key, mem.arena.key),
                )
            )
        return key

    def _weight_source(self, op: VOp) -> WeightSource:
        """The op's weights as the encoder keys them (found once per op)."""
        source = self._sources.get(id(op))
        if source is None:
            zero_points = 0 if op.weight_zero_points is None else op.weight_zero_points
            source = self._sources[id(op)] = weights_source(op.weights.data, zero_points)
        return source

    # -- per-op decisions ---------------------------------------------------------------------------------
    def block_config(
        self, op: VOp, ofm: Shape, ifm: Shape, ifm2: Shape | None, sparse: bool = False
    ) -> BlockConfig:
        """Vela's block config for the op computing ``ofm`` (GetOpConfig).

        Looked up by the query's values before the query is made: every schedule asks again for the same
        stripes, and making and hashing a :class:`BlockQuery` costs more than the lookup.
        """
        fmt = op.ofm.tensor.format
        key = (op.type, ofm, ifm, ifm2, op.ifm.bits, op.ofm.bits, op.kernel.key, op.uses_lut, op.scaled)
        key = (key, op.perm, fmt, sparse)
        configs = self.fam.op_configs
        config = configs.get(key)
        if config is None:
            if len(configs) >= self.fam.memo_limit:
                configs.clear()
            config = configs[key] = self.fam.block_config(
                BlockQuery(
                    op.type,
                    ofm,
                    ifm,
                    ifm2,
                    op.ifm.bits,
                    op.ofm.bits,
                    op.kernel,
                    2048 if op.uses_lut else 0,
                    op.scaled,
                    transpose=transpose_type(op.perm),
                    ofm_format=fmt,
                    sparse_weights=sparse,
                )
            )
        return config

    def encode(
        self, op: VOp, config: BlockConfig, slices: list[int], fmt: WeightFormat = DEFAULT_FORMAT
    ) -> EncodedWeights | None:
        """The op's encoded weight (and scale) stream for depth ``slices``.

        Raises WeightsNotSparse when ``fmt`` is sparse and the weights are not.
        """
        params_key = (config.key, op.ifm.bits, op.kernel.key, fmt.fast, fmt.sparse)
        params = self.fam.params.get(params_key)
        if params is None:
            params = self.fam.params[params_key] = self.fam.encoding_params(
                config, op.ifm.bits, op.kernel, fmt.fast, fmt.sparse
            )
        if op.weights is None:
            return encode_scales(op.ofm.shape[3], params, slices) if op.has_scales else None
        source = self._weight_source(op)
        # every schedule asks again, and so does the next plan; a failed sparse encoding is remembered too
        key = (op.type, source.digest, params_key, tuple(slices))
        encodings = self.fam.encodings
        if key in encodings:
            encoded = encodings[key]
        else:
            if len(encodings) >= self.fam.memo_limit:
                encodings.clear()
            try:
                encoded = encode_source(op.type, source, params, slices)
            except WeightsNotSparse:
                encoded = None
            encodings[key] = encoded
        if encoded is None:
            raise WeightsNotSparse(f"{op.type} weights are not 2:4 sparse")
        return encoded

    def encode_best(self, op: VOp, cost: OpCost) -> None:
        """Encode the weights in the format that decodes and runs fastest (EncodeBestWeightFormat, U85).

        Sparse weights need their own block config, and are dropped when it runs the op slower; the fast
        format is tried only while it looks quicker to decode (UseFastDecoder). Each candidate costs its
        decode cycles plus the op's cycles (ChooseBestWeightFormat); the op's cycles are counted only when
        a sparse config exists, as in Vela.
        """
        formats = self.fam.weight_formats(op.type)
        slices = [0, weight_depth(op, cost.stripe)]
        if not formats:
            cost.weights = self.encode(op, cost.config, slices)
            return
        ifm2 = op.ifm2.shape if op.ifm2 is not None else None
        configs = {
            False: cost.config,
            True: self.block_config(op, cost.stripe, cost.stripe_input, ifm2, sparse=True),
        }
        cycles = {
            sparse: self.fam.op_cycles(
                self.perf_query(
                    op, cost, fmt=SPARSE_FORMAT if sparse else DEFAULT_FORMAT, config=configs[sparse]
                )
            )[0]
            for sparse in (False, True)
        }
        allowed = {"fast": "fast" in formats, "sparse": cycles[True] <= cycles[False]}
        best = None
        for fmt in FORMAT_ORDER:
            if (fmt.fast and not allowed["fast"]) or (fmt.sparse and not allowed["sparse"]):
                continue
            try:
                weights = self.encode(op, configs[fmt.sparse], slices, fmt)
            except WeightsNotSparse:
                allowed["sparse"] = False
                continue
            if not fmt.fast and allowed["fast"] and not self.fam.use_fast_decoder(weights, self.mem.const):
                allowed["fast"] = False
            total = self.fam.weight_decode_cycles(weights, fmt.fast, self.mem.const) + cycles[fmt.sparse]
            if best is None or total < best[0]:
                best = (total, fmt, weights)
        _, cost.weight_format, cost.weights = best
        cost.config = configs[cost.weight_format.sparse]

    def op_info(self, op: VOp, stripe: Shape, encode: bool = True) -> OpCost:
        """Block config and (unless not ``encode``) encoded weights of ``op`` computing an OFM stripe
        (CreateSchedulerOpInfo); memoised per family on :meth:`op_key` (a new cost each time: callers
        change it)."""
        key = (self.op_key(op), stripe, encode)
        found = self.fam.op_infos.get(key)
        if found is None:
            cost = self._op_info(op, stripe, encode)
            found = (cost.config, cost.stripe, cost.stripe_input, cost.weights, cost.weight_format)
            self.fam.remember(self.fam.op_infos, key, found)
        config, stripe, stripe_input, weights, weight_format = found
        return OpCost(
            config,
            stripe,
            stripe_input,
            weights,
            weight_format,
            depth_slices=[0, weight_depth(op, op.ofm.shape)],
        )

    def _op_info(self, op: VOp, stripe: Shape, encode: bool) -> OpCost:
        ifm = op.ifm.shape
        ifm2 = op.ifm2.shape if op.ifm2 is not None else None
        full = op.ofm.shape
        if not can_stripe(op):
            stripe = full
        if stripe != full:  # a stripe reads the rows it needs, always the whole width (U55/U65 split only H)
            h = min(required_input_size(stripe[1], op.kernel.stride_y, op.kernel.dilated_h), ifm[1])
            ifm = (ifm[0], h, ifm[2], ifm[3])
            if ifm2 is not None:
                ifm2 = (ifm2[0], min(h, ifm2[1]), ifm2[2], ifm2[3])
        cost = OpCost(
            self.block_config(op, stripe, ifm, ifm2), stripe, ifm, depth_slices=[0, weight_depth(op, full)]
        )
        if encode:
            self.encode_best(op, cost)
        return cost

    def perf_query(
        self,
        op: VOp,
        cost: OpCost,
        ofm_depth: int | None = None,
        scheduling: int = est.SINGLE,
        with_weights: bool = True,
        fmt: WeightFormat = DEFAULT_FORMAT,
        config: BlockConfig | None = None,
    ) -> est.PerfQuery:
        """Vela's InitPerfQuery: the op at full shape (or ``ofm_depth`` of it) with its weight details.

        ``fmt`` is the weight format the estimate assumes: Vela's schedules cost ops in the default format,
        its buffering and final estimates in the one chosen. ``config`` replaces the cost's block config.
        """
        ofm_shape = op.ofm.shape if ofm_depth is None else (*op.ofm.shape[:3], ofm_depth)
        q = est.PerfQuery(
            op.type,
            op.kernel,
            config or cost.config,
            self.feature_map(op.ifm),
            self.feature_map(op.ofm, ofm_shape),
            self.feature_map(op.ifm2) if op.ifm2 is not None else None,
            op.activation,
            has_scales=op.has_scales,
            scheduling=scheduling,
            tmp_memory=self.mem.arena if op.type == "MatMul" else None,
            transpose=transpose_type(op.perm),
            fast_weights=fmt.fast,
            sparse_weights=fmt.sparse,
            group=self.group_ops(op),
        )
        if op.has_scales:
            q.const_memory = self.mem.const
        if with_weights and cost.weights is not None:
            ratio = (ofm_depth if ofm_depth is not None else op.ofm.shape[3]) / op.ofm.shape[3]
            q.encoded_weight_bytes = int(cost.weights.total_weight_bytes * ratio)
            q.encoded_scale_bytes = int(
                (cost.weights.allocation_bytes - cost.weights.total_weight_bytes) * ratio
            )
            q.const_memory = self.mem.const
            if cost.buffered:
                q.weight_staging = self.mem.staging
                if cost.prebuffer:
                    q.first_weight_dma_bytes = cost.weights.range_sizes[0]
        return q

    def measure(self, op: VOp, cost: OpCost) -> None:
        """The op's cycles and element access at full depth, and its unbuffered sliced performance."""
        q = self.perf_query(op, cost)
        cost.op_cycles, cost.macs = self.fam.op_cycles(q)
        cost.access = self.fam.element_access(q)
        cost.perf = self.sliced_perf(
            op,
            cost.depth_slices,
            cost.config,
            cost.weights,
            False,
            False,
            cost.stripe,
            0,
            "None",
            cost.weight_format,
        )

    def sliced_perf(
        self,
        op: VOp,
        slices: list[int],
        config: BlockConfig,
        weights: EncodedWeights | None,
        stage_weights: bool,
        stage_ifm: bool,
        stripe: Shape,
        slack_cycles: int,
        buffering: str,
        fmt: WeightFormat = DEFAULT_FORMAT,
    ) -> EstimatedPerf:
        """Vela's EstimateSlicedOpPerformance: run and read cycles of the op in depth slices (memoised per
        family on :meth:`op_key`; callers only read the answer)."""
        key = (
            self.op_key(op),
            tuple(slices),
            config.key,
            weights.range_sizes if weights is not None else None,
            stage_weights,
            stage_ifm,
            stripe,
            slack_cycles,
            buffering,
            fmt.fast,
            fmt.sparse,
        )
        perf = self.fam.sliced_perfs.get(key)
        if perf is None:
            perf = self._sliced_perf(
                op, slices, config, weights, stage_weights, stage_ifm, stripe, slack_cycles, buffering, fmt
            )
            self.fam.remember(self.fam.sliced_perfs, key, perf)
        return perf

    def _sliced_perf(
        self,
        op: VOp,
        slices: list[int],
        config: BlockConfig,
        weights: EncodedWeights | None,
        stage_weights: bool,
        stage_ifm: bool,
        stripe: Shape,
        slack_cycles: int,
        buffering: str,
        fmt: WeightFormat,
    ) -> EstimatedPerf:
        res = EstimatedPerf()
        repeats = max(1.0, op.ofm.shape[1] / stripe[1])
        wgt_mem = None
        if weights is not None:
            wgt_mem = self.mem.staging if stage_weights else self.mem.const
        ifm_mem = self.mem.staging if stage_ifm else self.memory(op.ifm.tensor)
        h = min(required_input_size(stripe[1], op.kernel.stride_y, op.kernel.dilated_h), op.ifm.shape[1])
        w = min(required_input_size(stripe[2], op.kernel.stride_x, op.kernel.dilated_w), op.ifm.shape[2])
        ifm_shape = (1, h, w, op.ifm.shape[3])
        q = est.PerfQuery(
            op.type,
            op.kernel,
            config,
            est.FeatureMap(ifm_shape, op.ifm.bits, ifm_mem, op.ifm.tensor.format),
            est.FeatureMap(
                (1, stripe[1], stripe[2], 0), op.ofm.bits, self.memory(op.ofm.tensor), op.ofm.tensor.format
            ),
            self.feature_map(op.ifm2) if op.ifm2 is not None else None,
            op.activation,
            const_memory=self.mem.const if op.has_scales else None,
            has_scales=op.has_scales,
            weight_staging=wgt_mem,
            tmp_memory=self.mem.arena if op.type == "MatMul" else None,
            transpose=transpose_type(op.perm),
            fast_weights=fmt.fast,
            sparse_weights=fmt.sparse,
            group=self.group_ops(op),
        )
        n_slices = len(slices) - 1
        fetches = 0
        ifm_read = 0
        access = None
        for i in range(n_slices):
            depth = slices[i + 1] - slices[i]
            if q.ofm.shape[3] != depth:
                q.ofm.shape = (*q.ofm.shape[:3], depth)
                access = self.fam.element_access(q)
                ifm_read = -(-access.ifm_read[0] * op.ifm.bits // 8)
            res.ifm_read_bytes += ifm_read
            if weights is not None:
                res.weight_read_bytes += weights.range_sizes[i] * access.weights_refetch
                fetches += access.weights_refetch
        res.ifm_size_bytes = -(-elements(ifm_shape) * op.ifm.bits // 8)
        visible = run = slice_cycles = 0
        sched = est.SINGLE if n_slices == 1 else est.FIRST
        transfer_required = weights is not None and wgt_mem != self.mem.const
        # slices are mostly of one depth and one size: each distinct one is costed once
        cycles_of: dict[tuple[int, int], int] = {}
        transfers: dict[int, int] = {}
        for i in range(n_slices):
            depth = slices[i + 1] - slices[i]
            if i == n_slices - 1 and i != 0:
                sched = est.LAST
            slice_cycles = cycles_of.get((depth, sched))
            if slice_cycles is None:
                q.ofm.shape = (*q.ofm.shape[:3], depth)
                q.scheduling = sched
                slice_cycles = cycles_of[depth, sched] = self.fam.op_cycles(q)[0]
            if transfer_required:
                nbytes = weights.range_sizes[i]
                transfer = transfers.get(nbytes)
                if transfer is None:
                    transfer = transfers[nbytes] = self.fam.mem_to_mem(wgt_mem, self.mem.const, nbytes)
                if transfer > slack_cycles:
                    visible += transfer - slack_cycles
            run += slice_cycles
            slack_cycles = slice_cycles if buffering == "Double" else 0
            sched = est.BACK_TO_BACK
        res.last_slice_cycles = slice_cycles
        res.op_run_cycles = int(repeats * run)
        res.full_run_cycles = res.op_run_cycles + visible
        res.visible_buffer_cycles = visible
        if wgt_mem is not None and fetches:
            res.weight_read_cycles = (
                self.fam.min_read(wgt_mem, res.weight_read_bytes // fetches, True, op.type, fmt.fast)
                * fetches
            )
        res.ifm_read_cycles = self.fam.min_read(ifm_mem, res.ifm_read_bytes, False, op.type)
        res.weight_read_cycles = int(repeats * res.weight_read_cycles)
        res.weight_read_bytes = int(repeats * res.weight_read_bytes)
        res.ifm_read_cycles = int(repeats * res.ifm_read_cycles)
        return res

    # -- schedules ----------------------------------------------------------------------------------------
    def initial_schedule(self) -> Schedule:
        """Every op unstriped, unbuffered (Vela's max schedule)."""
        costs: list[OpCost | None] = []
        for op in self.ops:
            if not op.npu:
                costs.append(None)
                continue
            cost = self.op_info(op, op.ofm.shape)
            self.measure(op, cost)
            costs.append(cost)
        return Schedule(costs)

    def minimal_schedule(self) -> Schedule:
        """Every op striped to as few rows as the op after it needs (ProposeMinimalSchedule).

        Only stripes matter for building cascades, after which every op left out of one takes its
        max-schedule cost: weights are encoded and costs measured later, for the ops cascaded
        (:meth:`complete_cascaded`), as encoding dominates the scheduler's run time.
        """
        costs: list[OpCost | None] = [None] * len(self.ops)
        after: VOp | None = None
        for op in reversed(self.ops):
            if op.npu:
                rows = after.kernel.stride_y if after is not None else 1
                costs[op.index] = self.op_info(op, (*op.ofm.shape[:1], rows, *op.ofm.shape[2:]), encode=False)
            after = op
        return Schedule(costs)

    def complete_cascaded(self, sched: Schedule) -> None:
        """Encode and measure the minimal-schedule costs of the ops in cascades."""
        for info in sched.cascades.values():
            for i in range(info.start, info.end + 1):
                self.encode_best(self.ops[i], sched.costs[i])
                self.measure(self.ops[i], sched.costs[i])

    # -- memory -------------------------------------------------------------------------------------------
    def live_ranges(self, sched: Schedule) -> LiveRangeGraph:
        """Live ranges of the staging memory under ``sched`` (sets each cost's time index)."""
        graph = LiveRangeGraph()
        graph.extract(
            self.ops, sched.costs, sched.cascades, self.in_staging, self.size_of, True, self._structures
        )
        return graph

    def update_memory(self, sched: Schedule) -> LiveRangeGraph:
        """Recompute ``sched``'s memory snapshot and peak."""
        graph = self.live_ranges(sched)
        sched.memory, sched.peak_bytes = graph.snapshot()
        return graph

    def local_usage(self, sched: Schedule) -> tuple[dict[int, int], dict[int, int], dict[int, tuple]]:
        """Per op, the staging bytes it holds itself and those live across it; and each tensor's live
        range."""
        graph = self.update_memory(sched)
        live = {}
        for n, lr in enumerate(graph.ranges):
            for t in lr.tensors:
                live[id(t)] = (lr.start, lr.end, -(-lr.size // 16) * 16, n)
        local, non_local = {}, {}
        for op, cost, structure in zip(self.ops, sched.costs, self._structures):
            if cost is None:
                continue
            ifm = op.ifms[op.primary_ifm].tensor
            own = self.size_of(ifm) if self.in_staging(ifm) else 0
            ofm = structure.final_ofm
            if self.in_staging(ofm) and not (cost.cascade == 0 and graph.same_range(ifm, ofm)):
                own += self.size_of(ofm)
            own += cost.weight_buffer_bytes()
            local[op.index] = own
            non_local[op.index] = sched.memory_at(cost.time_index).used() - own
        return local, non_local, live

    def propose_buffering(
        self,
        ref: Schedule,
        limit_bytes: int,
        start: int = 0,
        end: int | None = None,
        prev_index: int | None = None,
    ) -> Schedule:
        """Weight buffering for ops ``start..end`` in turn (ProposeScheduleBuffering) within
        ``limit_bytes``."""
        limit = min(1 << 30, limit_bytes)
        end = len(self.ops) if end is None else end
        out = Schedule(list(ref.costs), dict(ref.cascades), [m.copy() for m in ref.memory], ref.peak_bytes)
        prev = prev_index
        for i in range(start, end):
            op = self.ops[i]
            if ref.costs[i] is None:
                prev = i
                continue
            cost = self.copy_cost(ref.costs[i])
            out.costs[i] = cost
            mem = out.memory_at(ref.costs[i].time_index)
            used = max(mem.buffering - ref.costs[i].weight_buffer_bytes(), 0) + mem.unbuffered()
            cost.slack_memory = max(limit - used, 0)
            cost.slack_cycles = ref.costs[i].op_cycles
            if op.weights is not None:
                prev_cost = out.costs[prev] if prev is not None else None
                prev_op = self.ops[prev] if prev is not None else None
                self.propose_weight_buffering(op, cost, ref.costs, prev_op, prev_cost, cost.slack_memory)
                if cost.buffered and cost.time_index < len(out.memory):
                    out.memory[cost.time_index].buffering += cost.weight_buffer_bytes()
                    if cost.prebuffer and cost.time_index > 0:
                        out.memory[cost.time_index - 1].nonlocal_ += cost.buffer_parts[0]
            prev = i
        return out

    def propose_weight_buffering(
        self,
        op: VOp,
        cost: OpCost,
        ref_costs: list[OpCost | None],
        prev_op: VOp | None,
        prev_cost: OpCost | None,
        limit_bytes: int,
    ) -> None:
        """Vela's ProposeWeightBuffering and ProposeSlicedWeightBuffering for one op."""
        full_depth = weight_depth(op, ref_costs[op.index].stripe)
        cost.depth_slices = [0, full_depth]
        cost.weights = self.encode(op, cost.config, [0, full_depth], cost.weight_format)
        if not self._sliced_buffering(op, cost, ref_costs, prev_op, prev_cost, limit_bytes, full_depth):
            cost.buffering, cost.buffer_parts, cost.prebuffer = "None", (0, 0), False
            cost.weight_buffers = []

    @staticmethod
    def _prefer_future_op(op, ref_costs, perf, cost, prev_cost, buffering_bytes) -> bool:
        """Skip buffering when it would crowd out the next op's IFM, which reads worse
        (PreferFutureOpPerformance)."""
        readers = op.final_ofm.tensor.consumers
        if not readers or readers[0].parent is not None:  # a chained reader has no estimate of its own
            return False
        nxt = ref_costs[readers[0].index] if readers[0].index < len(ref_costs) else None
        if (
            nxt is None
            or nxt.perf.op_dominated()
            or nxt.perf.ifm_ratio() <= 2.0
            or nxt.perf.weight_read_cycles <= 0
            or nxt.perf.ifm_size_bytes >= cost.slack_memory
        ):
            return False
        prev_slack = prev_cost.slack_memory if prev_cost is not None else 0
        if nxt.perf.ifm_size_bytes + perf.ifm_size_bytes + buffering_bytes > prev_slack:
            return cost.perf.op_dominated() or nxt.perf.ifm_read_cycles > perf.ifm_read_cycles
        return False

    def _sliced_buffering(self, op, cost, ref_costs, prev_op, prev_cost, limit_bytes, full_depth) -> bool:
        ref = ref_costs[op.index]
        staging, const = self.mem.staging, self.mem.const
        full_bytes = cost.weights.allocation_bytes
        full_transfer = self.fam.mem_to_mem(staging, const, full_bytes)
        cost.full_weight_transfer_cycles = full_transfer
        if const == staging:
            return False
        repeats = div_up(op.ofm.shape[1], cost.stripe[1]) if cost.cascade and cost.stripe[1] else 1
        refetches = ref.access.weights_refetch * repeats
        fast = cost.weight_format.fast
        unmoved = self.fam.min_read(const, full_bytes, True, op.type, fast) * refetches
        from_buffer = self.fam.min_read(staging, full_bytes, True, op.type, fast) * refetches
        if from_buffer >= unmoved:
            return False
        can_slice = op.type in CONVOLUTIONS and transpose_type(op.perm) == "None" and cost.cascade == 0
        slack_cycles = prev_cost.slack_cycles if prev_cost is not None else 0
        slack_memory = prev_cost.slack_memory if prev_cost is not None else limit_bytes
        smallest = int(full_transfer * min(full_depth, OFM_SPLIT_DEPTH) / full_depth)
        allow_pre = op.index != 0 and (cost.cascade == 0 or cost.first_in_cascade)
        force_initial = (
            (prev_op is None or not prev_op.npu)
            and refetches > 1
            and (smallest < unmoved // 10 or smallest <= STARTUP_DELAY_CYCLES)
        )
        op_dominated = ref.perf.op_run_cycles > unmoved
        method = None
        can_full = full_bytes <= limit_bytes
        consumers = 1  # adjacent ops sharing one weight tensor: not produced by these rewrites
        visible_full = max(full_transfer - slack_cycles, 0)
        full_buffered = from_buffer + visible_full
        if can_slice:
            expected = full_depth // cost.config.ofm_block[2]
            if (
                force_initial
                or full_buffered < unmoved
                or expected > 2
                or (allow_pre and smallest < slack_cycles and refetches > 1)
            ):
                method = "sliced"
        static_test = div_up(visible_full, repeats)
        hidden = visible_full < full_transfer // 20 or static_test < STARTUP_DELAY_CYCLES
        if can_full and (consumers > 1 or (not can_slice and (hidden or force_initial))):
            if full_buffered < unmoved or not op_dominated:
                method = "full" if consumers > 1 else "single_slice"
        if method is None:
            return False
        half_limit = limit_bytes // 2
        ratio = 1.0
        if method == "sliced":
            min_split = min(OFM_SPLIT_DEPTH / full_depth, 1.0)
            half_split = min(half_limit / full_bytes, 1.0)
            transfer_ratio = min(slack_cycles / full_transfer, 1.0)
            aligned = math.floor(transfer_ratio / min_split) * min_split
            ratio = 1.0 if (1.0 - aligned) < (min_split / 2) else transfer_ratio
            if op_dominated and 0.5 < ratio < 1.0:
                ratio = round_up(math.floor(full_depth * 0.5), OFM_SPLIT_DEPTH) / full_depth
                ratio = min(max(ratio, 0.5), 1.0)
            ratio = min(max(ratio, min_split), half_split)
        slices = [0, full_depth]
        weights = cost.weights
        block_depth = cost.config.ofm_block[2]
        min_depth = self.fam.min_depth(cost.config)
        if ratio < 1.0:
            buffering_depth = 0
            pre_depth = max(round_down(int(full_depth * ratio), min_depth), OFM_SPLIT_DEPTH)
            if pre_depth < full_depth:
                q = self.perf_query(
                    op, cost, pre_depth, est.FIRST, with_weights=False, fmt=cost.weight_format
                )
                q.weight_staging = staging
                pre_cycles = self.fam.op_cycles(q)[0]
                buffering_depth = int((full_depth * pre_cycles) / full_transfer)
                buffering_depth = round_up(max(buffering_depth, OFM_SPLIT_DEPTH), block_depth)
                if int(buffering_depth / full_depth * full_bytes) > half_limit:
                    buffering_depth = int(half_limit / full_bytes * full_depth)
            while buffering_depth != 0:
                step = block_depth if buffering_depth > block_depth else min_depth
                buffering_depth = max(round_down(buffering_depth, step), min_depth)
                slices = [0] + list(range(pre_depth, full_depth, buffering_depth)) + [full_depth]
                weights = self.encode(op, cost.config, slices, cost.weight_format)
                if weights.max_range_bytes <= half_limit or (
                    pre_depth == OFM_SPLIT_DEPTH and buffering_depth == min_depth
                ):
                    break
                if buffering_depth > pre_depth:
                    buffering_depth = round_up(buffering_depth // 2, min_depth)
                else:
                    pre_depth = round_up(pre_depth // 2, OFM_SPLIT_DEPTH)
            if len(slices) > 3:
                util = buffering_depth / round_up(buffering_depth, block_depth)
                if util < 0.3 and op_dominated:
                    return False
        buffering, parts = _try_weight_buffering(weights, limit_bytes)
        if buffering == "None":
            return False
        usable_slack = (
            slack_cycles
            if (allow_pre and parts[0] < slack_memory)
            else (STARTUP_DELAY_CYCLES if force_initial else 0)
        )
        cost.stage_ifm = False
        perf = self.sliced_perf(
            op,
            slices,
            cost.config,
            weights,
            True,
            cost.sources_cascade_buffer(),
            cost.stripe,
            usable_slack,
            buffering,
            cost.weight_format,
        )
        if method in ("sliced", "single_slice"):
            ifm_read_cycles = perf.ifm_read_cycles
            # weigh staging the IFM instead, if an op (not a data-layout one) computes it
            ifm_t = op.ifm.tensor
            if (
                ifm_t.producers
                and not cost.sources_cascade_buffer()
                and ifm_t.producers[0].type not in DATA_LAYOUT_OPS
                and self.memory(ifm_t) != staging
            ):
                both_fit = perf.ifm_size_bytes + parts[0] + parts[1] <= limit_bytes
                old_staged = self.fam.min_read(staging, ref.perf.ifm_read_bytes, False, op.type)
                perf_ifm = max(ref.perf.op_run_cycles, ref.perf.weight_read_cycles, old_staged)
                perf_wgt = max(perf.full_run_cycles, perf.weight_read_cycles, perf.ifm_read_cycles)
                prev_slack_memory = prev_cost.slack_memory if prev_cost is not None else 0
                if (
                    not both_fit
                    and perf.ifm_size_bytes < prev_slack_memory
                    and perf_ifm < perf_wgt
                    and perf_ifm < perf.ifm_read_cycles
                ):
                    cost.stage_ifm = True
                    return False
                if self._prefer_future_op(op, ref_costs, perf, cost, prev_cost, parts[0] + parts[1]):
                    return False
                if both_fit:
                    cost.stage_ifm = True
                    ifm_read_cycles = self.fam.min_read(staging, perf.ifm_read_bytes, False, op.type)
            original = max(ref.perf.op_run_cycles, ref.perf.weight_read_cycles, ifm_read_cycles)
            new = max(perf.full_run_cycles, perf.weight_read_cycles, ifm_read_cycles)
            n = len(slices) - 1
            if op_dominated:
                if perf.visible_buffer_cycles // n < STARTUP_DELAY_CYCLES:
                    new -= perf.visible_buffer_cycles
                if n > 1 and perf.full_run_cycles == new and force_initial:
                    new -= n * (STARTUP_DELAY_CYCLES // 2)
            if original < new or (refetches == 1 and full_transfer + perf.weight_read_cycles > original):
                return False
        cost.depth_slices = slices
        cost.perf = perf
        cost.weights = weights
        cost.buffering = buffering
        cost.buffer_parts = parts
        cost.prebuffer = allow_pre and parts[0] < slack_memory
        cost.slack_cycles = perf.last_slice_cycles
        cost.stage_weights = True
        cost.weight_buffers = [WeightBuffer(p) for p in (parts if buffering == "Double" else parts[:1])]
        n_parts = 2 if buffering == "Double" else 1
        cost.slack_memory -= parts[(len(slices) - 2) % n_parts]
        return True

    # -- cascades and the whole schedule -------------------------------------------------------------------
    def striped(self, final_stripe: Shape, ref: Schedule, start: int, end: int) -> Schedule:
        """Ops ``start..end`` re-striped back from ``final_stripe`` at the last (ProposeScheduleStriping)."""
        out = Schedule(list(ref.costs), dict(ref.cascades), ref.memory, ref.peak_bytes)
        stripe = final_stripe
        for i in range(end, start - 1, -1):
            op = self.ops[i]
            ref_cost = ref.costs[i]
            if not op.npu or ref_cost is None:
                continue
            cost = self.op_info(op, stripe)
            cost.time_index = ref_cost.time_index
            if ref_cost.buffering == "Single" and ref_cost.weight_buffers and cost.weights is not None:
                cost.buffering, cost.prebuffer = "Single", False
                cost.weight_buffers = [WeightBuffer(cost.weights.allocation_bytes)]
                cost.buffer_parts = (cost.weights.allocation_bytes, 0)
            q = self.perf_query(op, cost)
            cost.op_cycles, cost.macs = self.fam.op_cycles(q)
            cost.access = self.fam.element_access(q)
            # A fresh SchedulerOpInfo has no staging preference, so this reference estimate reads the weights
            # from where they live even when single-buffered: the buffered-vs-unbuffered test of the later
            # ProposeScheduleBuffering compares against it.
            cost.perf = self.sliced_perf(
                op,
                cost.depth_slices,
                cost.config,
                cost.weights,
                False,
                False,
                cost.stripe,
                0,
                cost.buffering,
                cost.weight_format,
            )
            out.costs[i] = cost
            src = op.ifms[op.primary_ifm].shape
            stripe = (src[0], stripe[1] * op.kernel.stride_y, *src[2:])
        return out

    def memory_estimate(self, sched: Schedule, non_local: dict[int, int], start: int, end: int) -> int:
        """Peak staging bytes of ops ``start..end`` as if all were in SRAM (EstimateScheduleMemoryUsage)."""
        peak = 0
        for i in range(start, end + 1):
            cost = sched.costs[i]
            if cost is None:
                continue
            op = self.ops[i]
            if cost.cascade != 0:
                peak = max(sched.cascades[cost.cascade].mem_usage, peak)
                continue
            use = cost.weight_buffer_bytes() + op.ifm.tensor.size_bytes() + op.ofm.tensor.size_bytes()
            use += non_local.get(i, 0)
            if op.ifm2 is not None:
                use += op.ifm2.tensor.size_bytes()
            peak = max(use, peak)
        return peak

    def optimize_cascade(
        self, info: CascadeInfo, ref: Schedule, max_s: Schedule, limit: int
    ) -> Schedule | None:
        """The longest stripes that keep the cascade within the staging limit (OptimizeSubSchedule)."""
        start, end = info.start, info.end
        sub = Schedule(list(ref.costs), {end: info}, ref.memory, ref.peak_bytes)
        for i in range(max(start - 1, 0), end + 1):
            c = self.copy_cost(ref.costs[i])
            if c is not None:
                c.slack_memory = limit - ref.memory_at(c.time_index).used()
                c.slack_cycles = c.op_cycles
            sub.costs[i] = c
        first = self.ops[start]
        parallel = max(0, ref.memory_at(ref.costs[start].time_index).used() - info.local_usage)
        non_local = {i: parallel for i in range(start, end + 1)}
        local, _, live = self.local_usage(ref)
        span = self.ops[start : end + 1]
        builder = CascadeBuilder(self, span, non_local, local, live, self.mem.spilling)
        buffered = self.propose_buffering(sub, limit, start, end + 1, start - 1 if start > 0 else None)
        buffered.cascades = dict(sub.cascades)
        final = self.ops[end].ofm.shape
        max_h = (final[1] + 1) // 2
        min_h = ref.costs[end].stripe[1] + 1
        best = None
        max_count = 0
        for h in range(min_h, max_h + 1):
            proposal = self.striped((final[0], h, final[2], final[3]), buffered, start, end)
            costs = list(proposal.costs)
            cascades = builder.build(costs, max_s.costs, limit)
            proposal.costs, proposal.cascades = (
                costs,
                {**{k: v for k, v in ref.cascades.items() if k < start or k > end}, **cascades},
            )
            if max_count == 0:
                max_count = len(cascades)
            if self.memory_estimate(proposal, non_local, start, end) <= limit and len(cascades) <= max_count:
                best = proposal
                if not cascades:
                    break
            else:
                break
        del first
        return best

    def schedule(self) -> Schedule:
        """Vela's scheduling: max and min schedules, cascades, buffering, then SRAM placement."""
        limit = self.mem.staging_limit_bytes
        max_s = self.initial_schedule()
        self.update_memory(max_s)
        opt_max = self.propose_buffering(max_s, 1 << 30)
        self.update_memory(opt_max)
        if opt_max.peak_bytes < limit and not self.mem.spilling:  # everything fits: Vela keeps this schedule
            self.apply_cascades(opt_max)
            return opt_max
        min_s = self.minimal_schedule()
        local, non_local, live = self.local_usage(min_s)
        builder = CascadeBuilder(self, self.ops, non_local, local, live, self.mem.spilling)
        min_s.cascades = builder.build(min_s.costs, max_s.costs, limit)
        self.complete_cascaded(min_s)
        self.update_memory(min_s)
        for end, info in list(min_s.cascades.items()):
            better = self.optimize_cascade(info, min_s, max_s, limit)
            if better is not None:
                min_s.cascades.pop(end, None)
                for i in range(info.start, info.end + 1):
                    min_s.costs[i] = better.costs[i]
                min_s.cascades.update(
                    {k: v for k, v in better.cascades.items() if info.start <= k <= info.end}
                )
        self.update_memory(min_s)
        chosen = self.propose_buffering(min_s, limit)
        chosen.cascades = min_s.cascades
        self.update_memory(chosen)
        self.apply_cascades(chosen)
        self.update_memory(chosen)
        if self.mem.spilling:
            from hwsim.schedule.ethos_u.fast_storage import allocate_feature_maps

            allocate_feature_maps(self, chosen)
            self._groups.clear()  # feature maps moved
            self._op_keys.clear()
        return chosen

    def apply_cascades(self, sched: Schedule) -> None:
        """Rolling buffers live in staging memory, shaped as the cascade needs (ApplySchedule)."""
        self._groups.clear()  # the op groups' feature maps change memory and layout
        self._op_keys.clear()
        for op, cost in zip(self.ops, sched.costs):
            if cost is None or not cost.cascade:
                continue
            buf = sched.cascades[cost.cascade].buffers.get(op.index)
            if buf is not None:
                conn = op.ifms[op.primary_ifm]
                conn.tensor.memory = "staging"
                conn.tensor.format = "NHCWB16"
                conn.tensor.storage_shape = (conn.shape[0], buf.shape[1], buf.shape[2], conn.shape[3])


STRIPABLE = frozenset(
    {
        "Conv2D",
        "DepthwiseConv2D",
        "FullyConnected",
        "MaxPool",
        "AvgPool",
        "ReduceSum",
        "Add",
        "Sub",
        "Mul",
        "Maximum",
        "Minimum",
        "Asr",
        "SHL",
        "CLZ",
        "LUT",
        "MemoryCopy",
        "Relu",
        "Relu6",
    }
)


def can_stripe(op: VOp) -> bool:
    """Ops computed a few rows at a time: convolutions, pools and elementwise ops whose output is not
    transposed and that no op is chained into (CanSubdivide; CreateSchedulerOpInfo keeps chains whole)."""
    return op.type in STRIPABLE and transpose_type(op.perm) == "None" and not op.chained


def weight_depth(op: VOp, ofm: Shape) -> int:
    """The OFM channels an op's weights (and their depth slices) count: those before a fused transpose
    moved them."""
    if op.weights is None or op.perm is None:
        return ofm[3]
    from hwsim.schedule.ethos_u.blocks_u85 import unpermute

    return unpermute(ofm, transpose_type(op.perm))[3]


def _try_weight_buffering(weights: EncodedWeights, limit_bytes: int) -> tuple[str, tuple[int, int]]:
    """Double-buffer the slices when two fit and there is more than one, else single-buffer them
    (TryWeightBuffering)."""
    double = weights.double_buffer_sizes[0] + weights.double_buffer_sizes[1]
    if double <= limit_bytes and weights.max_range_bytes < weights.allocation_bytes:
        return "Double", weights.double_buffer_sizes
    single = min(weights.allocation_bytes, weights.max_range_bytes)
    if single <= limit_bytes:
        return "Single", (single, 0)
    return "None", (0, 0)
