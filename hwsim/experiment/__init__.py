"""Experiments: sweep files in, one result row per point out, figures and a report.

``run_experiment("experiments/default.yaml")`` is what ``hwsim run`` calls: load and validate the file
(:mod:`~hwsim.experiment.spec`), expand the points (:mod:`~hwsim.experiment.sweep`), run those not yet in
``results/<name>/`` (:mod:`~hwsim.experiment.runner`), write each row as it finishes
(:mod:`~hwsim.experiment.results`), then draw the figures (:mod:`hwsim.plots.experiment`) and write
``report.md`` (:mod:`~hwsim.experiment.report`).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path


def run_experiment(path: str | Path, *, jobs: int = 1, resume: bool = False, dry_run: bool = False,
                   executor: str = "local", scheduler: str | None = None, results: str | Path | None = None,
                   limit: int | None = None, out=None) -> Path | None:
    """Run (or with ``dry_run`` list) the points of an experiment file; the results folder, or None.

    ``limit`` runs only the first ``limit`` points still missing (for tests and quick looks).
    """
    from hwsim.errors import ConfigError
    from hwsim.experiment.progress import Progress
    from hwsim.experiment.results import ResultTable
    from hwsim.experiment.runner import run_all
    from hwsim.experiment.spec import load_experiment
    from hwsim.experiment.sweep import expand
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
    try:
        points = expand(spec, path.parent)
    except ConfigError as exc:  # a recipe or axis that cannot be resolved: name the experiment file
        raise ConfigError(f"{path}: {exc}") from None
    if dry_run:
        print(f"{spec.name}: {len(points)} points", file=out)
        for p in points:
            axes = ", ".join(f"{k}={v}" for k, v in p.axes.items() if k not in ("workload", "device", "recipe"))
            print(f"  {p.index:4d} {p.run_id}  {p.workload} | {p.device} | {p.recipe_label}"
                  f"{' | ' + axes if axes else ''}", file=out)
        return None
    folder = Path(results) if results else Path("results") / spec.name
    table = ResultTable.open(folder, resume)
    if path.resolve() != (folder / "experiment.yaml").resolve():
        shutil.copyfile(path, folder / "experiment.yaml")
    todo = [p for p in points if p.run_id not in table.rows]
    if limit is not None:
        todo = todo[:limit]
    wanted = {p.run_id for p in points}
    table.rows = {k: v for k, v in table.rows.items() if k in wanted}  # a changed file drops stale rows
    print(f"{spec.name}: {len(points)} points, {len(points) - len(todo)} already done, running {len(todo)} "
          f"({executor}{', ' + str(jobs) + ' jobs' if executor == 'local' else ''}) -> {folder}", file=out)
    t0 = time.perf_counter()
    bar = Progress(len(todo))
    try:
        for row in run_all(todo, jobs=jobs, executor=executor, scheduler=scheduler):
            table.add(row)
            bar.update(row["status"] == "ok")
    except KeyboardInterrupt:
        table.write_tables()
        print(f"\ninterrupted: {len(table.rows)} of {len(points)} rows kept in {folder}; "
              f"rerun with --resume to finish", file=out)
        raise SystemExit(130) from None
    table.write_tables()
    rows = table.sorted_rows()
    figures = finish(rows, folder, spec.name, spec.plots, spec.description, tuple(spec.pareto))
    failed = sum(r["status"] != "ok" for r in rows)
    print(f"{len(rows)} rows ({failed} failed) in {time.perf_counter() - t0:.1f} s: {folder / 'rows.csv'}, "
          f"{folder / 'rows.parquet'}, {folder / 'report.md'}, {len(figures)} figure files", file=out)
    return folder


def finish(rows: list[dict], folder: Path, name: str, plots: list[str] | None, description: str = "",
           pareto: tuple[str, str] = ("energy_uj", "integer_top1")) -> list[Path]:
    """Draw the figures and write report.md for ``rows`` into ``folder``."""
    from hwsim.experiment.report import write_report
    from hwsim.plots.experiment import draw

    figures = draw(rows, folder, plots)
    write_report(rows, folder, name, figures, description, pareto)
    return figures


def plot_results(source: str | Path, out: str | Path | None = None, plots: list[str] | None = None,
                 stream=None) -> list[Path]:
    """Redraw figures and the report from a results folder or file, without rerunning anything."""
    from hwsim.experiment.results import load_rows

    stream = stream or sys.stdout
    rows = load_rows(source)
    src = Path(source)
    folder = Path(out) if out else (src if src.is_dir() else src.parent)
    name = folder.name
    figures = finish(rows, folder, name, plots)
    for p in figures:
        print(f"wrote {p}", file=stream)
    print(f"wrote {folder / 'report.md'}", file=stream)
    return figures
