"""Experiments: sweep files in, one result row per point out, figures and a report.

``run_experiment("experiments/default.yaml")`` is what ``hwsim run`` calls: load and validate the file
(:mod:`~hwsim.experiment.spec`), expand the points (:mod:`~hwsim.experiment.sweep`), run those not yet in
``results/<name>/`` (:mod:`~hwsim.experiment.runner`), write each row as it finishes
(:mod:`~hwsim.experiment.results`), then draw the figures (:mod:`hwsim.plots.experiment`) and write
``report.md`` (:mod:`~hwsim.experiment.report`) and ``report.html`` (:mod:`~hwsim.experiment.html`), both
naming the recommended point (:mod:`~hwsim.experiment.select`).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path

from hwsim.guards import check_output_dir


def run_experiment(
    path: str | Path,
    *,
    jobs: int = 1,
    resume: bool = False,
    dry_run: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    results: str | Path | None = None,
    limit: int | None = None,
    max_points: int | None = None,
    out=None,
) -> Path | None:
    """Run (or with ``dry_run`` list) the points of an experiment file; the results folder, or None.

    Before any point runs: the sweep's size is counted from its axes and refused beyond ``max_points``
    (default :data:`~hwsim.experiment.sweep.MAX_POINTS`), every point's recipe, device and workload are
    checked (a dry run too), and the results folder is checked writable and locked against a second run.
    ``limit`` runs only the first ``limit`` points still missing (for tests and quick looks).
    """
    from hwsim.experiment.results import ResultTable
    from hwsim.experiment.spec import load_experiment
    from hwsim.experiment.sweep import check_points, check_size, expand
    from hwsim.experiment.workloads import check_experiment

    out = out or sys.stdout
    path = Path(path)
    if not path.exists():
        from hwsim.paths import data_dir

        shipped = data_dir("experiments") / path.name
        if shipped.exists():
            path = shipped
    spec = load_experiment(path)
    check_experiment(spec, path)
    with _located_in(path):
        check_size(spec, max_points)
        points = expand(spec, path.parent)
        check_points(spec, points)
    if dry_run:
        print(f"{spec.name}: {len(points)} points (each checked)", file=out)
        for p in points:
            axes = ", ".join(
                f"{k}={v}" for k, v in p.axes.items() if k not in ("workload", "device", "recipe")
            )
            print(
                f"  {p.index:4d} {p.run_id}  {p.workload} | {p.device} | {p.recipe_label}"
                f"{' | ' + axes if axes else ''}",
                file=out,
            )
        return None
    folder = Path(results) if results else Path("results") / spec.name
    check_output_dir(folder, "--results")
    with ResultTable.open(folder, resume) as table:
        if path.resolve() != (folder / "experiment.yaml").resolve():
            shutil.copyfile(path, folder / "experiment.yaml")
        _run_points(spec, path, points, table, folder, jobs, executor, scheduler, limit, out)
    return folder


def _run_points(
    spec,
    path: Path,
    points,
    table,
    folder: Path,
    jobs: int,
    executor: str,
    scheduler: str | None,
    limit: int | None,
    out,
) -> None:
    from hwsim.experiment.progress import Progress
    from hwsim.experiment.runner import accuracy_wanted, run_all

    table.adopt({p.legacy_run_id: p.run_id for p in points})
    missing = [p for p in points if p.run_id not in table.rows]
    todo = missing[:limit] if limit is not None else missing
    wanted = {p.run_id for p in points}
    table.rows = {k: v for k, v in table.rows.items() if k in wanted}  # a changed file drops stale rows
    how = f"{executor}, {jobs} jobs" if executor == "local" else executor
    print(
        f"{spec.name}: {len(points)} points, {len(points) - len(missing)} already done, running "
        f"{len(todo)} ({how}) -> {folder}",
        file=out,
    )
    t0 = time.perf_counter()
    if todo and executor == "local" and jobs == 1 and accuracy_wanted(spec.metrics):
        from hwsim.numerics import warmup

        warmup.start()  # the kernels compile on the other core(s) while the first points build and simulate
    bar = Progress(len(todo))
    try:
        for row in run_all(todo, jobs=jobs, executor=executor, scheduler=scheduler):
            table.add(row.as_dict())
            bar.update(row.status == "ok")
    except KeyboardInterrupt:
        table.write_tables()
        print(
            f"\ninterrupted: {len(table.rows)} of {len(points)} rows kept in {folder}; "
            f"rerun with --resume to finish",
            file=out,
        )
        raise SystemExit(130) from None
    table.write_tables()
    rows = table.sorted_rows()
    figures, sels = finish(
        rows, folder, spec.name, spec.plots, spec.description, tuple(spec.pareto), spec.select
    )
    failed = sum(r["status"] != "ok" for r in rows)
    print(
        f"{len(rows)} rows ({failed} failed) in {time.perf_counter() - t0:.1f} s: {folder / 'rows.csv'}, "
        f"{folder / 'rows.parquet'}, {folder / 'report.md'}, {folder / 'report.html'}, "
        f"{len(figures)} figure files",
        file=out,
    )
    _say_selection(sels, rows, path, out)


@contextlib.contextmanager
def _located_in(path: Path):
    """Prefix a ConfigError raised while expanding ``path``'s sweep with ``path:line: field`` (its ``loc``);
    a message starting `` = `` (a swept value) or ``: `` follows the field directly."""
    from hwsim.config.yamlio import format_loc, line_of, load_yaml_with_lines
    from hwsim.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        if not exc.loc:
            raise ConfigError(f"{path}: {exc}") from None
        _, lines = load_yaml_with_lines(path)
        text = str(exc) if str(exc).startswith((" = ", ": ")) else f": {exc}"
        raise ConfigError(f"{path}:{line_of(lines, exc.loc)}: {format_loc(exc.loc)}{text}") from None


def _say_selection(sels: list, rows: list[dict], path: Path, out) -> None:
    """Print the recommended point(s); a declared ``select:`` that no point meets (for some workload) is an
    error at its line, raised after everything is written."""
    from hwsim.config.yamlio import line_of, load_yaml_with_lines
    from hwsim.errors import ConfigError
    from hwsim.experiment.report import point_name
    from hwsim.experiment.rows import swept_columns

    missing = []
    for sel in sels:
        scope = f" for {sel.scope}" if sel.scope else ""
        if sel.point is not None:
            cols = [c for c in swept_columns(rows) if not (sel.scope and c == "workload")]
            print(
                f"recommended{scope}: {point_name(sel.point, cols)} (run {sel.point.get('run_id')}; "
                f"{len(sel.meeting)} of {sel.total} points meet {sel.constraints_text()}; lowest "
                f"{sel.rule.minimize.replace('_', ' ')})",
                file=out,
            )
            continue
        fails = ", ".join(f"{n} fail {k}" for k, n in sel.failing.items()) or "none has the objective"
        if sel.declared:
            missing.append(f"{sel.constraints_text()}{scope} ({fails}, of {sel.total} points)")
        else:
            print(
                f"no recommended point{scope}: none meets the default rule ({sel.constraints_text()}; "
                f"{fails})",
                file=out,
            )
    if missing:
        _, lines = load_yaml_with_lines(path)
        raise ConfigError(
            f"{path}:{line_of(lines, ('select',))}: select: no point meets "
            f"{'; '.join(missing)}; results and report written; loosen the constraints or "
            f"widen the sweep"
        )


def finish(
    rows: list[dict],
    folder: Path,
    name: str,
    plots: list[str] | None,
    description: str = "",
    pareto: tuple[str, str] = ("energy_uj", "integer_top1"),
    select=None,
):
    """Draw the figures and write report.md and report.html for ``rows`` into ``folder``; the figure paths
    and the recommendations (:class:`~hwsim.experiment.select.Selection`, one per workload)."""
    from hwsim.experiment.html import write_html
    from hwsim.experiment.report import write_report
    from hwsim.plots.experiment import draw

    figures = draw(rows, folder, plots)
    sels = write_report(rows, folder, name, figures, description, pareto, select)
    write_html(rows, folder, name, figures, description, pareto, sels)
    return figures, sels


def plot_results(
    source: str | Path, out: str | Path | None = None, plots: list[str] | None = None, stream=None
) -> list[Path]:
    """Redraw figures and the report from a results folder or file, without rerunning anything."""
    from hwsim.errors import ConfigError
    from hwsim.experiment.results import load_rows

    stream = stream or sys.stdout
    if out:
        check_output_dir(out, "--out")
    rows = load_rows(source)
    if not rows:
        raise ConfigError(f"{source}: the table has no rows to draw")
    src = Path(source)
    folder = Path(out) if out else (src if src.is_dir() else src.parent)
    check_output_dir(folder, "--out (default: the results folder)")
    copy = (src if src.is_dir() else src.parent) / "experiment.yaml"
    if copy.exists():  # the run left its experiment file: keep its name, question, Pareto axes and rule
        from hwsim.experiment.spec import load_experiment

        spec = load_experiment(copy)
        figures, _ = finish(
            rows,
            folder,
            spec.name,
            spec.plots if plots is None else plots,
            spec.description,
            tuple(spec.pareto),
            spec.select,
        )
    else:
        figures, _ = finish(rows, folder, folder.name, plots)
    for p in figures:
        print(f"wrote {p}", file=stream)
    print(f"wrote {folder / 'report.md'} and {folder / 'report.html'}", file=stream)
    return figures
