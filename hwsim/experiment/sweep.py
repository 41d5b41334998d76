"""Expand an :class:`~hwsim.experiment.spec.ExperimentSpec` into :class:`RunSpec` points, in a stable order.

Order: the base lists (workloads, then recipes, then devices; outermost first), then the grid axes in
file order, then the zipped lists, then the random samples (drawn with ``numpy.random.default_rng(seed)``
in file order of the axes). A point's ``run_id`` is a hash of its canonical content (its index and where
the experiment file lives are not part of it), so identical points collapse into one and a resumed run
recognises the points it already has.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from hwsim.config.dotted import set_path
from hwsim.experiment.spec import ExperimentSpec, RandomAxis, WorkloadItem


class RunSpec(BaseModel):
    """One point of a sweep: everything :func:`~hwsim.experiment.runner.run_one` needs, and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: str
    index: int
    seed: int
    workload: str
    workload_item: dict[str, Any] | None = None  # the user's model and data (WorkloadItem), else None
    device: str
    device_overrides: dict[str, Any] = {}
    recipe: dict[str, Any]
    recipe_label: str
    energy: dict[str, Any]
    evaluation: dict[str, Any]
    run: dict[str, Any]
    metrics: tuple[str, ...]
    axes: dict[str, Any] = {}
    base_dir: str = "."

    def canonical(self) -> str:
        """The content that identifies the point, as sorted compact JSON (no index, no base_dir)."""
        data = self.model_dump(mode="json", exclude={"index", "base_dir"})
        return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)

    @property
    def run_id(self) -> str:
        """The first 16 hex digits of the SHA-256 of :meth:`canonical`."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]


def axis_label(value: Any) -> Any:
    """A swept value as a table cell: scalars stay, mappings become ``k=v,k=v``, lists JSON.

    >>> axis_label({"granularity": "per_group", "group_size": 16})
    'granularity=per_group,group_size=16'
    """
    if isinstance(value, dict):
        return ",".join(f"{k}={axis_label(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return json.dumps(value)
    return value


def resolve_recipe(item: str | dict, base_dir: Path) -> tuple[dict, str]:
    """A base recipe (preset name, file, or inline mapping) as a plain dict and its label."""
    from hwsim.quant.recipe import PRESETS, QuantRecipe, load_recipe

    if isinstance(item, dict):
        return QuantRecipe.model_validate(item).model_dump(mode="json"), str(item["name"])
    if item in PRESETS:
        return PRESETS[item].model_dump(mode="json"), item
    for candidate in (base_dir / item, Path(item)):
        if candidate.exists():
            recipe = load_recipe(candidate)
            return recipe.model_dump(mode="json"), recipe.name
    recipe = load_recipe(item)  # raises with the list of presets and a "did you mean"
    return recipe.model_dump(mode="json"), recipe.name


def workload_item(value: Any) -> WorkloadItem | None:
    """The user workload a base-list entry or axis value stands for (None for a name or a model path)."""
    if isinstance(value, WorkloadItem):
        return value
    if isinstance(value, dict):
        return WorkloadItem.model_validate(value)
    return None


def _draw(rng: np.random.Generator, axis: list | RandomAxis) -> Any:
    if isinstance(axis, list):
        return copy.deepcopy(axis[int(rng.integers(len(axis)))])
    u = float(rng.random())
    value = math.exp(math.log(axis.low) + u * (math.log(axis.high) - math.log(axis.low))) if axis.log \
        else axis.low + u * (axis.high - axis.low)
    return int(round(value)) if axis.integer else value


def expand(spec: ExperimentSpec, base_dir: str | Path = ".") -> list[RunSpec]:
    """Every point of ``spec`` in a stable order, duplicates removed, indices 0..N-1."""
    base_dir = Path(base_dir)
    sw = spec.sweep
    named = set(sw.grid) | set(sw.zip) | set(sw.random.axes)
    base: dict[str, list] = {}
    if "workload" not in named:
        base["workload"] = list(spec.workloads)
    if "recipe" not in named:
        base["recipe"] = list(spec.recipes)
    if "device" not in named:
        base["device"] = list(spec.devices)
    grid = {**base, **sw.grid}
    grid_points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    zip_points = [dict(zip(sw.zip, combo)) for combo in zip(*sw.zip.values())] if sw.zip else [{}]
    rng = np.random.default_rng(spec.seed)
    random_points = [{k: _draw(rng, a) for k, a in sw.random.axes.items()} for _ in range(sw.random.samples)] \
        if sw.random.samples and sw.random.axes else [{}]
    recipes_cache: dict[str, tuple[dict, str]] = {}
    points: list[RunSpec] = []
    seen: set[str] = set()
    for g, z, r in itertools.product(grid_points, zip_points, random_points):
        values = {**g, **z, **r}
        point = _point(spec, values, base, base_dir, recipes_cache, len(points))
        if point.run_id not in seen:
            seen.add(point.run_id)
            points.append(point)
    return points


def _point(spec: ExperimentSpec, values: dict, base: dict, base_dir: Path, cache: dict, index: int) -> RunSpec:
    workload = values.get("workload", spec.workloads[0])
    item = workload_item(workload)
    device = values.get("device", spec.devices[0])
    recipe_item = values.get("recipe", spec.recipes[0])
    key = json.dumps(recipe_item, sort_keys=True)
    if key not in cache:
        cache[key] = resolve_recipe(recipe_item, base_dir)
    recipe, label = copy.deepcopy(cache[key][0]), cache[key][1]
    sections = {"energy": spec.energy.model_dump(mode="json"), "evaluation": spec.evaluation.model_dump(mode="json"),
                "run": spec.run.model_dump(mode="json")}
    device_overrides: dict[str, Any] = {}
    axes: dict[str, Any] = {}
    for path, value in values.items():
        axes[path] = item.label if path == "workload" and item else axis_label(value if path != "recipe" else label)
        root, _, rest = path.partition(".")
        if not rest:
            continue
        if root == "recipe":
            set_path(recipe, rest.split("."), value, f"sweep axis {path}")
        elif root == "device":
            device_overrides[rest] = copy.deepcopy(value)
        else:
            set_path(sections[root], rest.split("."), value, f"sweep axis {path}")
    for name in ("workload", "recipe", "device"):
        if name in base and len(base[name]) > 1:
            axes.setdefault(name, axes.get(name))
    return RunSpec(experiment=spec.name, index=index, seed=spec.seed, workload=item.label if item else str(workload),
                   workload_item=item.model_dump(mode="json", exclude_none=True) if item else None, device=str(device),
                   device_overrides=device_overrides, recipe=recipe, recipe_label=label, metrics=tuple(spec.metrics),
                   axes=axes, base_dir=str(base_dir), **sections)
