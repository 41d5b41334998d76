"""The results folder of one experiment: rows written as they finish, so a crash keeps what was done.

``results/<name>/rows.jsonl`` gets each finished row appended, flushed and fsync'ed; then ``rows.csv`` and
``rows.parquet`` are rewritten whole through a temporary file and :func:`os.replace` (atomic on POSIX), with
rows sorted by point index, so a table never reflects completion order. ``--resume`` reads
``rows.jsonl`` (a line cut short by a kill is ignored, and cut off before the next row is appended) and runs
only the points whose ``run_id`` is missing. Cells are plain Python numbers (a numpy scalar is converted), so
the tables hold numbers, not ``np.float64(...)`` text. A run holds ``.lock`` in the folder (``flock``): a
second run on the same folder is refused with the holder's process id.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import time
from pathlib import Path

from hwsim.errors import ConfigError

ROWS = "rows.jsonl"
TABLES = (ROWS, "rows.csv", "rows.parquet")


class ResultTable:
    """The rows of one results folder, in point order."""

    def __init__(self, folder: str | Path, refresh_seconds: float = 1.0):
        self.folder = Path(folder)
        self.rows: dict[str, dict] = {}
        self.refresh_seconds = refresh_seconds
        self._written = 0.0
        self._lock = None

    @classmethod
    def open(cls, folder: str | Path, resume: bool) -> "ResultTable":
        """The table of ``folder``, locked (use it as a context manager to release the lock); without
        ``resume`` earlier rows are discarded."""
        table = cls(folder)
        table.folder.mkdir(parents=True, exist_ok=True)
        table._lock = lock_folder(table.folder)
        path = table.folder / ROWS
        if resume:
            table.rows = read_jsonl(path)
            cut_torn_line(path)
        elif path.exists():
            path.unlink()
        return table

    def __enter__(self) -> "ResultTable":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the folder's lock."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def add(self, row: dict) -> None:
        """Record a finished row durably, then refresh the CSV and Parquet files (at most every
        ``refresh_seconds``; :meth:`write_tables` at the end of a run writes the final state)."""
        row = {k: plain(v) for k, v in row.items()}
        self.rows[row["run_id"]] = row
        with open(self.folder / ROWS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=False, default=_json_default) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if time.monotonic() - self._written >= self.refresh_seconds:
            self.write_tables()

    def adopt(self, renames: dict[str, str]) -> None:
        """Take the row held under each old run id in ``renames`` as the row of its new id (when the new id
        has none): a point whose id changed with hwsim is not run again."""
        for old, new in renames.items():
            if old != new and old in self.rows and new not in self.rows:
                self.rows[new] = {**self.rows.pop(old), "run_id": new}

    def sorted_rows(self) -> list[dict]:
        """Rows ordered by point index."""
        return sorted(self.rows.values(), key=lambda r: r["index"])

    def write_tables(self) -> None:
        """Atomically rewrite rows.csv and rows.parquet from the rows held."""
        self._written = time.monotonic()
        rows = self.sorted_rows()
        write_csv(rows, self.folder / "rows.csv")
        write_parquet(rows, self.folder / "rows.parquet")


def lock_folder(folder: Path):
    """An open ``folder/.lock`` holding an exclusive ``flock`` and this process's id; a ConfigError naming
    the holder when another process has it (the lock ends with the process, even when it is killed)."""
    fh = open(folder / ".lock", "a+", encoding="utf-8")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise ConfigError(
            f"--results {folder}: in use by process {holder} (another hwsim run); wait for it "
            "to finish or give another --results folder"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def cut_torn_line(path: Path) -> None:
    """Cut a last line that a kill left without its newline, so the next row starts a line of its own."""
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def plain(value):
    """A numpy scalar as the Python number it holds (anything else unchanged)."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


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
    """Rows from a results folder (whichever of rows.jsonl, rows.csv, rows.parquet it has, in that order),
    or one of those files, in point order, with numbers parsed (none when the run ran none). Anything else is
    a ConfigError."""
    path = Path(source)
    if path.is_dir():
        path = next((path / name for name in TABLES if (path / name).exists()), path / ROWS)
        if not path.exists():
            raise ConfigError(f"{source}: no results there (none of {', '.join(TABLES)})")
    elif not path.exists():
        raise ConfigError(
            f"{source}: no such file or folder (expected a results folder or {'/'.join(TABLES)})"
        )
    elif path.suffix not in (".jsonl", ".csv", ".parquet"):
        raise ConfigError(
            f"{source}: not a results table (expected a results folder or a rows.jsonl, "
            f"rows.csv or rows.parquet, got a {path.suffix or 'suffix-less'} file)"
        )
    try:
        rows = _read_table(path)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(
            f"{path}: cannot read the results table ({str(exc).strip().splitlines()[0]})"
        ) from None
    if not all(isinstance(r.get("index"), int) and "status" in r for r in rows):
        raise ConfigError(f"{path}: not result rows (each needs an integer index and a status)")
    return sorted(rows, key=lambda r: r["index"])


def _read_table(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return list(read_jsonl(path).values())
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except pa.ArrowException as exc:
            raise ValueError(str(exc)) from None
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _parse(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]


def _parse(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("True", "False"):
        return text == "True"
    return text
