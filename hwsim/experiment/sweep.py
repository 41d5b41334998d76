"""Expand an :class:`~hwsim.experiment.spec.ExperimentSpec` into :class:`RunSpec` points, in a stable order.

Order: the base lists (workloads, then recipes, then devices; outermost first), then the grid axes in
file order, then the zipped lists, then the random samples (drawn with ``numpy.random.default_rng(seed)``
in file order of the axes). A point's ``run_id`` is a hash of its canonical content (its index and where
the experiment file lives are not part of it), so identical points collapse into one and a resumed run
recognises the points it already has.

:func:`count_points` counts the points from the axes' lengths before anything is expanded, so a sweep of a
million points is refused (beyond :data:`MAX_POINTS`, or the caller's limit) in microseconds, not after
gigabytes. Expansion validates each point's recipe, and :func:`check_points` its device and workload, so a
mistake in one swept value is reported with the axis, the value and the field before any point runs.
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
from pydantic import BaseModel, ConfigDict, field_serializer

from hwsim.config.dotted import set_path
from hwsim.config.yamlio import show
from hwsim.errors import ConfigError, RegistryError
from hwsim.experiment.spec import (
    EnergySpec,
    EvaluationSpec,
    ExperimentSpec,
    RandomAxis,
    RunOptions,
    WorkloadItem,
)
from hwsim.quant.recipe import QuantRecipe

MAX_POINTS = 10_000


class RunSpec(BaseModel):
    """One point of a sweep: everything :func:`~hwsim.experiment.runner.run_one` needs, and nothing else.

    Its sections are the validated spec objects, with the point's swept values in place. Device overrides
    stay a mapping of dotted paths: they are applied to, and checked against, the device the point loads.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: str
    index: int
    seed: int
    workload: str
    workload_item: WorkloadItem | None = None  # the user's model and data, else None
    device: str
    device_overrides: dict[str, Any] = {}
    recipe: QuantRecipe
    recipe_label: str
    energy: EnergySpec
    evaluation: EvaluationSpec
    run: RunOptions
    metrics: tuple[str, ...]
    axes: dict[str, Any] = {}
    base_dir: str = "."

    @field_serializer("workload_item")
    def _item(self, item: WorkloadItem | None) -> dict | None:
        """Only the fields the user gave, so a point's content (and :attr:`run_id`) names no defaults."""
        return None if item is None else item.model_dump(mode="json", exclude_none=True)

    def canonical(self) -> str:
        """The content that identifies the point, as sorted compact JSON (no index, no base_dir)."""
        data = self.model_dump(mode="json", exclude={"index", "base_dir"})
        return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)

    @property
    def run_id(self) -> str:
        """The first 16 hex digits of the SHA-256 of :meth:`canonical`."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]

    @property
    def legacy_run_id(self) -> str:
        """The id the point had before ``run.fail`` (a test hook, always false) left
        :class:`~hwsim.experiment.spec.RunOptions`, so that ``--resume`` keeps the rows of older results."""
        data = json.loads(self.canonical())
        data["run"]["fail"] = False
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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
        recipe = _validated(QuantRecipe, item, f"inline recipe {item.get('name')!r}", "recipe")
        return recipe.model_dump(mode="json"), str(item["name"])
    if item in PRESETS:
        return PRESETS[item].model_dump(mode="json"), item
    for candidate in (base_dir / item, Path(item)):
        if candidate.exists():
            recipe = load_recipe(candidate)
            return recipe.model_dump(mode="json"), recipe.name
    recipe = load_recipe(item)  # raises with the list of presets and a "did you mean"
    return recipe.model_dump(mode="json"), recipe.name


def _validated(model: type[BaseModel], data: dict, what: str, root: str):
    """``data`` as a ``model``, or a ConfigError ``what: <root> field <path>: message (got value)``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if message.startswith("@"):  # a cross-field rule blaming one field (yamlio.at_field)
            where, _, message = message[1:].partition(": ")
            field = ".".join(p for p in (field, where) if p)
        got = f" (got {show(err['input'])})" if "input" in err and not isinstance(err["input"], dict) else ""
        raise ConfigError(f"{what}: {root} field {field or '(top level)'}: {message}{got}") from None


def count_points(spec: ExperimentSpec) -> int:
    """How many points :func:`expand` would make at most (before duplicates collapse), from the lengths of
    the axes alone."""
    sw = spec.sweep
    named = set(sw.grid) | set(sw.zip) | set(sw.random.axes)
    count = math.prod(len(v) for v in sw.grid.values())
    for name, items in (("workload", spec.workloads), ("recipe", spec.recipes), ("device", spec.devices)):
        if name not in named:
            count *= len(items)
    if sw.zip:
        count *= len(next(iter(sw.zip.values())))
    if sw.random.samples and sw.random.axes:
        count *= sw.random.samples
    return count


def check_size(spec: ExperimentSpec, max_points: int | None = None) -> int:
    """:func:`count_points`, or a ConfigError when it exceeds ``max_points`` (default :data:`MAX_POINTS`)."""
    limit = MAX_POINTS if max_points is None else max_points
    count = count_points(spec)
    if count > limit:
        sw = spec.sweep
        sizes = [f"{k}: {len(v)}" for k, v in sw.grid.items()] + [
            f"zip: {len(next(iter(sw.zip.values())))}" if sw.zip else ""
        ]
        if sw.random.samples and sw.random.axes:
            sizes.append(f"random: {sw.random.samples}")
        err = ConfigError(
            f"the sweep has {count:,} points ({', '.join(x for x in sizes if x)}), more than "
            f"the limit of {limit:,}; raise it with --max-points (or max_points=)"
        )
        err.loc = ("sweep",)
        raise err
    return count


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
    value = (
        math.exp(math.log(axis.low) + u * (math.log(axis.high) - math.log(axis.low)))
        if axis.log
        else axis.low + u * (axis.high - axis.low)
    )
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
    random_points = (
        [{k: _draw(rng, a) for k, a in sw.random.axes.items()} for _ in range(sw.random.samples)]
        if sw.random.samples and sw.random.axes
        else [{}]
    )
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


def _point(
    spec: ExperimentSpec, values: dict, base: dict, base_dir: Path, cache: dict, index: int
) -> RunSpec:
    workload = values.get("workload", spec.workloads[0])
    item = workload_item(workload)
    device = values.get("device", spec.devices[0])
    recipe_item = values.get("recipe", spec.recipes[0])
    key = json.dumps(recipe_item, sort_keys=True)
    if key not in cache:
        try:
            cache[key] = resolve_recipe(recipe_item, base_dir)
        except ConfigError as exc:
            listed = recipe_item in spec.recipes
            exc.loc = exc.loc or (
                ("recipes", spec.recipes.index(recipe_item)) if listed else _axis_loc(spec, "recipe")
            )
            raise
    recipe, label = copy.deepcopy(cache[key][0]), cache[key][1]
    sections = {
        "energy": spec.energy.model_dump(mode="json"),
        "run": spec.run.model_dump(mode="json"),
        "evaluation": spec.evaluation.model_dump(mode="json"),
    }
    device_overrides: dict[str, Any] = {}
    axes: dict[str, Any] = {}
    for path, value in values.items():
        shown = label if path == "recipe" else value
        axes[path] = item.label if path == "workload" and item else axis_label(shown)
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
    for root, data in (("recipe", recipe), *sections.items()):
        _check_swept(spec, root, data, values, cache)
    return RunSpec(
        experiment=spec.name,
        index=index,
        seed=spec.seed,
        workload=item.label if item else str(workload),
        workload_item=item,
        device=str(device),
        device_overrides=device_overrides,
        recipe=recipe,
        recipe_label=label,
        metrics=tuple(spec.metrics),
        axes=axes,
        base_dir=str(base_dir),
        **sections,
    )


def _axis_loc(spec: ExperimentSpec, axis: str) -> tuple:
    sw = spec.sweep
    return (
        ("sweep", "grid", axis)
        if axis in sw.grid
        else ("sweep", "zip", axis)
        if axis in sw.zip
        else ("sweep", "random", "axes", axis)
    )


def _check_swept(spec: ExperimentSpec, root: str, data: dict, values: dict, cache: dict) -> None:
    """Refuse a ``root`` section (recipe, energy, evaluation, run) that swept values made invalid, naming
    the axis (the one on the failing field's path, else the first of ``root``), its value and the field."""
    from hwsim.experiment.spec import EnergySpec, EvaluationSpec, RunOptions
    from hwsim.quant.recipe import QuantRecipe

    axes = [p for p in values if p.startswith(root + ".")]
    if not axes:
        return
    key = f"valid {root}:" + json.dumps(data, sort_keys=True, default=str)
    if key in cache:
        return
    model = {"recipe": QuantRecipe, "energy": EnergySpec, "evaluation": EvaluationSpec, "run": RunOptions}[
        root
    ]
    try:
        _validated(model, data, "", root)
    except ConfigError as exc:
        field = str(exc).split(" field ", 1)[1].split(":", 1)[0]
        n = len(root) + 1
        first = next((a for a in axes if field.startswith(a[n:]) or a[n:].startswith(field)), axes[0])
        axes = [first] + [a for a in axes if a != first]
        err = ConfigError(_axis_values(axes, values) + str(exc))
        err.loc = _axis_loc(spec, first)
        raise err from None
    cache[key] = True


def check_points(spec: ExperimentSpec, points: list[RunSpec]) -> None:
    """Refuse points that cannot run: an unknown workload file or device, or device overrides the device
    schema refuses (named by axis and value). Each distinct device and override set is checked once."""
    from hwsim.devices.model import load_device, override

    devices: dict[str, Any] = {}
    seen: set = set()
    for p in points:
        if p.workload_item is None and (p.workload, p.base_dir) not in seen:  # items: check_experiment
            seen.add((p.workload, p.base_dir))
            try:
                workload_path(p)
            except ConfigError as exc:
                raise _blamed(spec, p, "workload", exc) from None
        if p.device not in devices:
            try:
                devices[p.device] = load_device(device_location(p))
            except (ConfigError, RegistryError) as exc:
                raise _blamed(spec, p, "device", exc) from None
        key = json.dumps([p.device, p.device_overrides], sort_keys=True, default=str)
        if p.device_overrides and key not in seen:
            seen.add(key)
            try:
                override(devices[p.device], p.device_overrides)
            except ConfigError as exc:
                raise _blamed(spec, p, "device.", exc) from None


def workload_path(spec: RunSpec) -> Path:
    """The model file of a point's workload: a built-in, a language model's config
    (:func:`hwsim.llm.experiment.lm_config_path`), or a file next to the experiment, here or shipped
    (:func:`hwsim.experiment.workloads.model_path`)."""
    from hwsim.experiment.workloads import builtin_of, model_path
    from hwsim.llm.experiment import lm_config_path

    builtin = builtin_of(spec.workload)
    if builtin:
        return builtin.path
    lm = lm_config_path(spec.workload, spec.base_dir)
    return lm if lm is not None else model_path(spec.workload, Path(spec.base_dir))


def device_location(p: RunSpec) -> str | Path:
    """The device a point names: a file next to the experiment, or a shipped name or path."""
    path = Path(p.base_dir) / p.device
    return path if path.suffix in (".yaml", ".yml", ".cfg") and path.exists() else p.device


def _blamed(spec: ExperimentSpec, p: RunSpec, prefix: str, exc: Exception) -> ConfigError:
    """``exc`` for point ``p``, located at the swept axes starting with ``prefix`` (with their values), or
    else at the point's item of the base list (``workloads``, ``devices``)."""
    sw = spec.sweep
    swept = [
        k
        for k in p.axes
        if (k == prefix.rstrip(".") or k.startswith(prefix))
        and (k in sw.grid or k in sw.zip or k in sw.random.axes)
    ]
    if swept:
        err = ConfigError(_axis_values(swept, p.axes) + f": {exc}")
        err.loc = _axis_loc(spec, swept[0])
        return err
    root = prefix.rstrip(".") + "s"
    items, value = list(getattr(spec, root)), getattr(p, prefix.rstrip("."))
    err = ConfigError(f": {exc}")
    err.loc = (root, items.index(value)) if value in items else (root,)
    return err


def _axis_values(axes: list[str], values: dict) -> str:
    """`` = v1 (with b = v2)``: the value of the first axis, then the others', to follow the axis's path."""
    others = [f"{a} = {show(values[a])}" for a in axes[1:]]
    return f" = {show(values[axes[0]])}" + (f" (with {', '.join(others)})" if others else "")
