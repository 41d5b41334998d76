"""Performance models: the one seam through which a graph on a device becomes the layer plans the simulator
plays.

A model is a function ``(graph, device) -> list[LayerPlan]`` registered under a name; a device file picks
one with ``performance_model:`` (default ``hwsim``, hwsim's own mapper,
:func:`hwsim.schedule.mapper.plan_graph`). A model that follows a peer or a chip names the peer and its
version, and its module docstring says which of the peer's mechanisms it reproduces. Entries are
``"module:function"`` paths imported on first use, so that listing or validating models costs no import.

Every model's plans go through the same discrete-event simulator (:mod:`hwsim.schedule.sim`), so traces,
stalls and the energy accounting work the same whichever model planned the layers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hwsim.devices.names import PERF_MODEL_NAMES
from hwsim.registry import Registry

if TYPE_CHECKING:
    from hwsim.devices.model import Device
    from hwsim.schedule.plans import LayerPlan
    from hwsim.workload.graph import Graph

PERF_MODELS: Registry[str] = Registry("performance model")
PERF_MODELS.add("hwsim", "hwsim.schedule.mapper:plan_checked")
PERF_MODELS.add("vela-5.2", "hwsim.schedule.ethos_u.model:plan_vela")
PERF_MODELS.add("scalesim-3.0", "hwsim.schedule.scalesim.model:plan_graph")
PERF_MODELS.add("edgetpu_compiler", "hwsim.schedule.edgetpu_compiler:plan_edgetpu")
if tuple(PERF_MODELS.names()) != PERF_MODEL_NAMES:  # a device file may name only what is registered here
    raise ImportError(f"PERF_MODELS {PERF_MODELS.names()} != hwsim.devices.names {PERF_MODEL_NAMES}")

# A device's ``memory_model`` other than ``hwsim`` replaces the plan with the model of that name: SCALE-Sim's
# memory system decides traffic, stalls and cycles of every MAC layer, so it is a performance model here.
MEMORY_MODELS = {"scalesim": "scalesim-3.0"}


def plan(graph: Graph, device: Device) -> list[LayerPlan]:
    """The layer plans of ``graph`` on ``device`` by the device's memory model, else its performance model."""
    name = MEMORY_MODELS.get(device.spec.memory_model, device.spec.performance_model)
    module, func = PERF_MODELS.get(name).split(":")
    return getattr(importlib.import_module(module), func)(graph, device)
