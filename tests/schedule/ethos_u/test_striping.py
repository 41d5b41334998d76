"""Vela 5.2.0's re-striping of a cascade candidate (``Scheduler::ProposeScheduleStriping``)."""

from __future__ import annotations

from pathlib import Path

from hwsim.devices.vela_systems import MEMORY_MODES, SYSTEM_CONFIGS
from hwsim.importers import load_model
from hwsim.schedule.ethos_u.family import family
from hwsim.schedule.ethos_u.formats import assign_formats
from hwsim.schedule.ethos_u.live_ranges import WeightBuffer
from hwsim.schedule.ethos_u.lowering import lower
from hwsim.schedule.ethos_u.scheduler import Scheduler
from hwsim.schedule.ethos_u.system import memory_system

DATA = Path(__file__).parents[2] / "data" / "ethos_u"


def test_restriped_single_buffered_op_estimates_weights_unstaged():
    """A re-striped op keeps its single weight buffer, but its reference estimate reads the weights from
    where they live: the fresh SchedulerOpInfo has no staging preference (and copies drop it), and the
    final buffering pass compares a buffered proposal against this estimate (mobilenet v1 on the U65)."""
    ops = lower(load_model(DATA / "kws_ds_cnn.tflite"))
    assign_formats(ops)
    memsys = memory_system(SYSTEM_CONFIGS["Ethos_U65_High_End"], MEMORY_MODES["Dedicated_Sram_384KB"])
    sched = Scheduler(family("ethos-u65-256"), memsys, ops)
    ref = sched.initial_schedule()
    sched.update_memory(ref)
    i = next(op.index for op in ops if op.npu and op.weights is not None and op.ofm.shape[1] > 2)
    ref.costs[i].buffering = "Single"
    ref.costs[i].weight_buffers = [WeightBuffer(ref.costs[i].weights.allocation_bytes)]
    full = ops[i].ofm.shape
    cost = sched.striped((full[0], 2, full[2], full[3]), ref, i, i).costs[i]
    assert cost.buffering == "Single" and cost.weight_buffer_bytes() == cost.weights.allocation_bytes
    args = (ops[i], cost.depth_slices, cost.config, cost.weights)
    unstaged = sched.sliced_perf(*args, False, False, cost.stripe, 0, "Single")
    staged = sched.sliced_perf(*args, True, False, cost.stripe, 0, "Single")
    assert cost.perf == unstaged
    assert staged.weight_read_cycles < unstaged.weight_read_cycles
