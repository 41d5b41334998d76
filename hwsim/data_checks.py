"""Array files and data sets a user hands hwsim, checked before they are used.

- :func:`load_array_file` reads a ``.npy`` or ``.npz`` without pickles, reading each array's header first: an
  array that claims more bytes than the file holds, or than this machine has free
  (:func:`available_memory_bytes`), is refused before anything is allocated.
- :func:`check_samples` refuses non-numeric, empty, non-finite inputs and inputs of another shape than the
  model's; for calibration also all-zero or constant inputs and magnitudes whose squares overflow float32.
- :func:`check_labels` refuses labels that are not class indices of the model's output.

Every failure is a :class:`~hwsim.errors.ConfigError` naming the option and file (one line, exit status 2).
"""

from __future__ import annotations

import math
import resource
import zipfile
from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError

CALIBRATION_LIMIT = math.sqrt(float(np.finfo(np.float32).max))  # 1.84e19: a larger value squared is inf


def available_memory_bytes() -> int:
    """Bytes this process may still allocate: the least of the machine's available memory, the cgroup's
    remaining limit and the address-space limit (``ulimit -v``) minus what is mapped already."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        top = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if top != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            limits.append(int(top) - used)
    except (OSError, ValueError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        try:
            status = Path("/proc/self/status").read_text()
            mapped = int(next(li for li in status.splitlines() if li.startswith("VmSize:")).split()[1]) * 1024
        except (OSError, StopIteration, ValueError):
            mapped = 0
        limits.append(soft - mapped)
    return max(0, min(limits)) if limits else 1 << 62


def human_bytes(n: float) -> str:
    """``n`` bytes in the largest unit that keeps it >= 1.

    >>> human_bytes(8e12), human_bytes(512)
    ('8.0 TB', '512 B')
    """
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def _header(fh, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of the ``.npy`` stream ``fh`` (nothing else is read)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        shape, _, dtype = (
            fmt.read_array_header_1_0(fh) if version == (1, 0) else fmt.read_array_header_2_0(fh)
        )
    except (ValueError, OSError, EOFError) as exc:
        raise ConfigError(f"{where}: not a valid .npy array ({_first_line(exc)})") from None
    if dtype.hasobject:
        raise ConfigError(
            f"{where}: holds Python objects (dtype {dtype}), which would need unpickling; "
            "save a numeric array"
        )
    return tuple(int(d) for d in shape), dtype


def _claim(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize


def _check_claim(where: str, shape, dtype, claimed: int, stored: int | None, free: int) -> None:
    what = f"its header claims shape {shape} {dtype} ({human_bytes(claimed)})"
    if claimed > free:
        raise ConfigError(
            f"{where}: {what}, more than the {human_bytes(free)} of memory available; refused before reading"
        )
    if stored is not None and stored < claimed:
        raise ConfigError(f"{where}: {what}, but the file holds {human_bytes(stored)} of data (truncated?)")


def load_array_file(path: str | Path, option: str) -> np.ndarray | dict[str, np.ndarray]:
    """The array of a ``.npy``, or the arrays of a ``.npz`` by name, checked before they are read.

    Pickled (object) arrays are refused, and so is any array whose header claims more bytes than the file
    holds or than :func:`available_memory_bytes` (checked before any allocation).
    """
    path = Path(path)
    where = f"{option} {path}"
    if not path.exists():
        raise ConfigError(f"{where}: no such file")
    if path.is_dir():
        raise ConfigError(f"{where}: is a folder, not a .npy or .npz file")
    free = available_memory_bytes()
    try:
        if zipfile.is_zipfile(path):
            return _load_npz(path, where, free)
        with open(path, "rb") as fh:
            shape, dtype = _header(fh, where)
            stored = path.stat().st_size - fh.tell()
        _check_claim(where, shape, dtype, _claim(shape, dtype), stored, free)
        return np.load(path, allow_pickle=False)
    except ConfigError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{where}: cannot read it as .npy or .npz ({_first_line(exc)})") from None


def _load_npz(path: Path, where: str, free: int) -> dict[str, np.ndarray]:
    total = 0
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if m.filename.endswith(".npy")]
        if not members:
            raise ConfigError(f"{where}: a zip file without .npy arrays (not an .npz)")
        for m in members:
            name = f"{where}[{m.filename.removesuffix('.npy')}]"
            with zf.open(m) as fh:
                shape, dtype = _header(fh, name)
                header_bytes = fh.tell()
            claimed = _claim(shape, dtype)
            total += claimed
            _check_claim(name, shape, dtype, claimed, m.file_size - header_bytes, free)
        if total > free:
            raise ConfigError(
                f"{where}: its arrays claim {human_bytes(total)} together, more than the "
                f"{human_bytes(free)} of memory available; refused before reading"
            )
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_samples(
    x: np.ndarray, where: str, *, model_shape: tuple | None = None, calibration: bool = False
) -> np.ndarray:
    """``x`` itself if it can be fed to a model whose input has ``model_shape``; else a ConfigError.

    Refused: a non-numeric dtype, no elements, NaN or infinities (the first index is named), a shape other
    than ``(N, *model_shape[1:])`` (dimensions the model leaves open match anything), and, for calibration
    data, all-zero or constant inputs (their ranges would collapse) and values too large to square.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"{where}: expected numbers (got dtype {x.dtype})")
    if x.size == 0:
        raise ConfigError(f"{where}: holds no values (shape {x.shape})")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            index = np.argwhere(bad)[0]
            value = x[tuple(index)]
            what = "NaN" if np.isnan(value) else ("+Inf" if value > 0 else "-Inf")
            raise ConfigError(
                f"{where}: contains {what} at index {index.tolist()} ({int(bad.sum())} non-finite values)"
            )
    if model_shape is not None:
        want = tuple(model_shape)
        ok = x.ndim == len(want) and all(not _fixed(w) or w == d for w, d in zip(want[1:], x.shape[1:]))
        if not ok:
            expect = "(N, " + ", ".join(str(w) if _fixed(w) else "?" for w in want[1:]) + ")"
            raise ConfigError(f"{where}: shape {x.shape} does not fit the model's input {expect}")
    if calibration:
        lo, hi = x.min(), x.max()
        if lo == hi:
            what = "all zero" if lo == 0 else f"constant ({lo})"
            raise ConfigError(
                f"{where}: every value is {what}; calibration would derive empty ranges from it"
            )
        big = float(max(abs(float(lo)), abs(float(hi))))
        if big > CALIBRATION_LIMIT:
            raise ConfigError(
                f"{where}: holds {big:.3g}; calibration's squared errors overflow float32 "
                f"beyond {CALIBRATION_LIMIT:.3g}, so no range could be chosen"
            )
    return x


def _fixed(dim) -> bool:
    return isinstance(dim, (int, np.integer)) and dim > 0


def check_labels(y: np.ndarray, n: int, where: str, classes: int | None = None) -> np.ndarray:
    """``y`` as int64 if it holds one class index per sample (``0 <= y < classes``); else a ConfigError."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ConfigError(f"{where}: labels must be class indices (got dtype {y.dtype})")
    if y.ndim != 1:
        raise ConfigError(
            f"{where}: labels must be one class index per sample, a 1-D array (got shape {y.shape})"
        )
    if len(y) != n:
        raise ConfigError(f"{where}: {len(y)} labels for {n} samples")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            i = int(np.argmax(~np.isfinite(y) | (y != np.round(y))))
            raise ConfigError(f"{where}: labels must be whole class indices (got {y[i]} at index {i})")
    y = y.astype(np.int64)
    top = classes if classes is not None else None
    bad = (y < 0) | (y >= top) if top is not None else (y < 0)
    if bad.any():
        i = int(np.argmax(bad))
        scope = f"0..{top - 1} (the model has {top} outputs)" if top is not None else ">= 0"
        raise ConfigError(f"{where}: label {int(y[i])} at index {i} is outside {scope}")
    return y
