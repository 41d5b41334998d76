"""The user's data for calibration and evaluation: a ``.npz`` (arrays ``x`` and optionally ``y``), a
``.npy`` of inputs, or a folder of images with a labels CSV and declared preprocessing.

An image folder is an :class:`ImageFolderSpec` (in an experiment file, a mapping where a data file name
would go)::

    evaluation: {images: val/, labels: val.csv, resize: 36, crop: 32, mean: [0.485, 0.456, 0.406],
                 std: [0.229, 0.224, 0.225], layout: NCHW}

Each image is decoded by Pillow to RGB (or gray), resized (an int resizes the shorter side, keeping the
aspect ratio, as torchvision does; [h, w] resizes exactly; bilinear), center-cropped, multiplied by
``scale`` (1/255), normalised by ``mean`` / ``std`` per channel and laid out NCHW or NHWC. The labels CSV
has rows ``file,label`` (a header row is skipped); the samples follow its order. Without a CSV every image
of the folder is taken in name order, unlabelled.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hwsim.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
Size = Annotated[int, Field(ge=1)] | tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]


class ImageFolderSpec(BaseModel):
    """A folder of images, its labels and the preprocessing that turns them into model inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: str
    labels: str | None = None
    resize: Size | None = None
    crop: Size | None = None
    color: Literal["rgb", "gray"] = "rgb"
    scale: float = 1.0 / 255.0
    mean: list[float] = [0.0]
    std: list[float] = [1.0]
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    limit: Annotated[int, Field(ge=1)] | None = None


DataSource = str | ImageFolderSpec


def load_data(
    source: DataSource | dict, what: str, labels: bool = False, base_dir: str | Path = "."
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs (float32) and labels (or None) from ``source``; ``labels`` makes missing labels an error.

    ``what`` names the source in messages (``--eval``, ``workloads[0].evaluation``).
    """
    if isinstance(source, dict):
        source = ImageFolderSpec.model_validate(source)
    if isinstance(source, ImageFolderSpec):
        if labels and source.labels is None:
            raise ConfigError(f"{what}: {source.images} has no labels (an image folder needs a labels CSV)")
        x, y = load_image_folder(source, what, base_dir)
    else:
        x, y = _load_array_file(Path(base_dir) / source, what)
    if labels and y is None:
        raise ConfigError(
            f"{what}: {source if isinstance(source, str) else source.images} has no labels "
            "(a .npz needs an array y; an image folder needs a labels CSV)"
        )
    return x, y


def _load_array_file(path: Path, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A .npy of inputs or a .npz with ``x`` (and ``y``), read through
    :func:`hwsim.data_checks.load_array_file` (no pickles, no arrays larger than the file or the memory)."""
    from hwsim.data_checks import load_array_file

    data = load_array_file(path, what)
    x, y = (data, None) if isinstance(data, np.ndarray) else (data.get("x"), data.get("y"))
    if x is None:
        raise ConfigError(f"{what}: {path}: expected an array x (and y) (got {', '.join(data) or 'none'})")
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"{what}: {path}: expected numbers (got dtype {x.dtype})")
    return x.astype(np.float32), y


def has_labels(source: DataSource | dict, base_dir: str | Path = ".") -> bool:
    """Whether ``source`` has labels, without reading the inputs (for checks before a run)."""
    if isinstance(source, dict):
        source = ImageFolderSpec.model_validate(source)
    if isinstance(source, ImageFolderSpec):
        return source.labels is not None
    path = Path(base_dir) / source
    if path.suffix == ".npy":
        return False
    try:
        with np.load(path) as data:
            return "y" in data.files
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None


def label_dtype(source: DataSource | dict, base_dir: str | Path = ".") -> np.dtype | None:
    """The labels' dtype (integer: class indices; float: regression targets), or None without labels."""
    if not has_labels(source, base_dir):
        return None
    if isinstance(source, (dict, ImageFolderSpec)):
        return np.dtype(np.int64)
    with np.load(Path(base_dir) / source) as data:
        return data["y"].dtype


def load_image_folder(
    spec: ImageFolderSpec, what: str, base_dir: str | Path = "."
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode, resize, crop and normalise the images of ``spec`` (see the module docstring)."""
    folder = Path(base_dir) / spec.images
    if not folder.is_dir():
        raise ConfigError(f"{what}.images: {folder} is not a folder")
    if spec.labels is not None:
        files, y = _read_labels(Path(base_dir) / spec.labels, folder, what)
    else:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        y = None
        if not files:
            raise ConfigError(f"{what}.images: {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if spec.limit is not None:
        files = files[: spec.limit]
        y = None if y is None else y[: spec.limit]
    channels = 3 if spec.color == "rgb" else 1
    for name, values in (("mean", spec.mean), ("std", spec.std)):
        if len(values) not in (1, channels):
            raise ConfigError(f"{what}.{name}: expected 1 or {channels} values (got {len(values)})")
    images = [_preprocess(path, spec, what) for path in files]
    for path, image in zip(files, images):
        if image.shape != images[0].shape:
            first = images[0].shape
            raise ConfigError(
                f"{what}.images: {files[0].name} is {first[0]}x{first[1]} and {path.name} "
                f"{image.shape[0]}x{image.shape[1]} after resize and crop: declare a resize "
                "and a crop that give every image one size"
            )
    x = np.stack(images)
    mean = np.asarray(spec.mean, np.float32).reshape(1, 1, 1, -1)
    std = np.asarray(spec.std, np.float32).reshape(1, 1, 1, -1)
    x = ((x * np.float32(spec.scale) - mean) / std).astype(np.float32)
    if spec.layout == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x, y


def _read_labels(path: Path, folder: Path, what: str) -> tuple[list[Path], np.ndarray]:
    try:
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if r]
    except OSError as exc:
        raise ConfigError(f"{what}.labels: {path}: cannot read ({exc.strerror})") from None
    if rows and not rows[0][-1].strip().lstrip("-").isdigit():
        rows = rows[1:]  # a header
    files, labels = [], []
    for line, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[1].strip().lstrip("-").isdigit():
            raise ConfigError(
                f"{path}:{line}: expected 'file,label' with an integer label (got {','.join(row)!r})"
            )
        image = folder / row[0].strip()
        if not image.exists():
            raise ConfigError(f"{path}:{line}: no image {row[0].strip()!r} in {folder}")
        files.append(image)
        labels.append(int(row[1]))
    if not files:
        raise ConfigError(f"{what}.labels: {path} lists no images")
    return files, np.asarray(labels, np.int64)


def _preprocess(path: Path, spec: ImageFolderSpec, what: str) -> np.ndarray:
    """One image as float32 HWC, resized and center-cropped (not yet scaled or normalised)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if spec.color == "rgb" else "L")
            if spec.resize is not None:
                img = img.resize(_resize_to(img.size, spec.resize), Image.Resampling.BILINEAR)
            if spec.crop is not None:
                h, w = (spec.crop, spec.crop) if isinstance(spec.crop, int) else spec.crop
                if h > img.height or w > img.width:
                    raise ConfigError(
                        f"{what}.crop: {h}x{w} is larger than {path.name} "
                        f"({img.height}x{img.width} "
                        "after resize)"
                    )
                top, left = (img.height - h) // 2, (img.width - w) // 2
                img = img.crop((left, top, left + w, top + h))
            x = np.asarray(img, np.float32)
    except (OSError, UnidentifiedImageError) as exc:
        raise ConfigError(f"{what}: {path}: not a readable image ({exc})") from None
    return x if x.ndim == 3 else x[:, :, None]


def _resize_to(size: tuple[int, int], resize) -> tuple[int, int]:
    """Pillow's (width, height) for ``resize``: an int scales the shorter side to it.

    >>> _resize_to((64, 32), 16), _resize_to((64, 32), (8, 10))
    ((32, 16), (10, 8))
    """
    width, height = size
    if isinstance(resize, int):
        if width <= height:
            return resize, max(1, round(height * resize / width))
        return max(1, round(width * resize / height)), resize
    return resize[1], resize[0]
