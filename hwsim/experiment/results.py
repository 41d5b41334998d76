"""The results folder of one experiment: rows written as they finish, so a crash keeps what was done.

``results/<name>/rows.jsonl`` gets each finished row appended, flushed and fsync'ed; then ``rows.csv`` and
``rows.parquet`` are rewritten whole through a temporary file and :func:`os.replace` (atomic on POSIX), with
rows sorted by point index, so a table never reflects completion order. ``--resume`` reads
``rows.jsonl`` (a line cut short by a kill is ignored) and runs only the points whose ``run_id`` is missing.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path

ROWS = "rows.jsonl"


class ResultTable:
    """The rows of one results folder, in point order."""

    def __init__(self, folder: str | Path, refresh_seconds: float = 1.0):
        self.folder = Path(folder)
        self.rows: dict[str, dict] = {}
        self.refresh_seconds = refresh_seconds
        self._written = 0.0

    @classmethod
    def open(cls, folder: str | Path, resume: bool) -> "ResultTable":
        """The table of ``folder``; without ``resume`` earlier rows are discarded."""
        table = cls(folder)
        table.folder.mkdir(parents=True, exist_ok=True)
        path = table.folder / ROWS
        if resume:
            table.rows = read_jsonl(path)
        elif path.exists():
            path.unlink()
        return table

    def add(self, row: dict) -> None:
        """Record a finished row durably, then refresh the CSV and Parquet files (at most every
        ``refresh_seconds``; :meth:`write_tables` at the end of a run writes the final state)."""
        self.rows[row["run_id"]] = row
        with open(self.folder / ROWS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=False, default=_json_default) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if time.monotonic() - self._written >= self.refresh_seconds:
            self.write_tables()

    def sorted_rows(self) -> list[dict]:
        """Rows ordered by point index."""
        return sorted(self.rows.values(), key=lambda r: r["index"])

    def write_tables(self) -> None:
        """Atomically rewrite rows.csv and rows.parquet from the rows held."""
        self._written = time.monotonic()
        rows = self.sorted_rows()
        write_csv(rows, self.folder / "rows.csv")
        write_parquet(rows, self.folder / "rows.parquet")


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def read_jsonl(path: Path) -> dict[str, dict]:
    """run_id -> row from a rows.jsonl; a truncated or unreadable line (a kill mid-write) is skipped."""
    rows: dict[str, dict] = {}
    if not path.exists():
        return rows
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "run_id" in row:
                rows[row["run_id"]] = row
    return rows


def columns(rows: list[dict]) -> list[str]:
    """All keys in first-seen order."""
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def _replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def write_csv(rows: list[dict], path: Path) -> Path:
    """Rows as CSV (missing cells empty), written to a temporary file then renamed over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    cols = columns(rows)
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, cols, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    _replace(tmp, path)
    return path


def _cell(value):
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def write_parquet(rows: list[dict], path: Path) -> Path | None:
    """Rows as Parquet through pyarrow (columns of mixed types are stored as strings)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return None
    cols = columns(rows)
    arrays = {}
    for col in cols:
        values = [r.get(col) for r in rows]
        try:
            arrays[col] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[col] = pa.array([None if v is None else str(v) for v in values])
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.table(arrays), tmp)
    _replace(tmp, path)
    return path


def load_rows(source: str | Path) -> list[dict]:
    """Rows from a results folder, rows.jsonl, rows.csv or rows.parquet, in point order, with numbers parsed."""
    path = Path(source)
    if path.is_dir():
        path = path / ROWS if (path / ROWS).exists() else path / "rows.csv"
    if not path.exists():
        from hwsim.errors import ConfigError

        raise ConfigError(f"{source}: no results there (expected a results folder or rows.jsonl/csv/parquet)")
    if path.suffix == ".jsonl":
        rows = list(read_jsonl(path).values())
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [{k: _parse(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]
    return sorted(rows, key=lambda r: int(r.get("index", 0)))


def _parse(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("True", "False"):
        return text == "True"
    return text
