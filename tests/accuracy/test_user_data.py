"""The user's data: image folders with a labels CSV and declared preprocessing, and the scores each kind of
label gives (top-1/top-5 for classes, MSE for real targets, agreement and SQNR against the float model)."""

import numpy as np
import pytest

from hwsim.accuracy.data import ImageFolderSpec, label_dtype, load_data
from hwsim.accuracy.metrics import scores
from hwsim.errors import ConfigError


@pytest.fixture
def folder(tmp_path):
    """Two RGB images (12 wide, 10 high, with known pixels; and 24 x 20) and a labels CSV with a header."""
    from PIL import Image

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    (tmp_path / "img").mkdir()
    Image.fromarray(small).save(tmp_path / "img" / "b.png")
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "img" / "a.png")
    (tmp_path / "labels.csv").write_text("file,label\nb.png,7\na.png,2\n")
    return tmp_path, small


def test_image_folder_is_resized_cropped_normalised_and_laid_out_in_csv_order(folder):
    base, small = folder
    spec = ImageFolderSpec(
        images="img",
        labels="labels.csv",
        resize=10,
        crop=8,
        mean=[0.5, 0.4, 0.3],
        std=[0.2, 0.25, 0.5],
        layout="NCHW",
    )
    x, y = load_data(spec, "evaluation", labels=True, base_dir=base)
    assert x.shape == (2, 3, 8, 8) and x.dtype == np.float32 and y.tolist() == [7, 2]
    # b.png's shorter side is already 10 (no resampling): a center crop at rows 1..8, columns 2..9
    mean, std = np.float32([0.5, 0.4, 0.3]), np.float32([0.2, 0.25, 0.5])
    want = (small[1:9, 2:10].astype(np.float32) / 255 - mean) / std
    np.testing.assert_allclose(x[0], want.transpose(2, 0, 1), rtol=1e-6, atol=1e-6)
    gray, unlabelled = load_data(
        {"images": "img", "color": "gray", "resize": [5, 6], "layout": "NHWC"}, "calib", base_dir=base
    )
    assert gray.shape == (2, 5, 6, 1) and unlabelled is None  # no CSV: every image, in name order
    assert label_dtype(spec, base) == np.int64 and label_dtype({"images": "img"}, base) is None


def test_image_folder_errors_name_the_file_and_line(folder):
    base, _ = folder
    (base / "bad.csv").write_text("b.png,7\nmissing.png,1\n")
    with pytest.raises(ConfigError, match=r"bad.csv:2: no image 'missing.png'"):
        load_data({"images": "img", "labels": "bad.csv"}, "evaluation", base_dir=base)
    with pytest.raises(ConfigError, match=r"evaluation.crop: 16x16 is larger than"):
        load_data({"images": "img", "crop": 16}, "evaluation", base_dir=base)
    with pytest.raises(ConfigError, match=r"--eval: img has no labels"):
        load_data({"images": "img"}, "--eval", labels=True, base_dir=base)
    with pytest.raises(ConfigError, match=r"calib.images: a.png is 20x24 and b.png 10x12 after resize"):
        load_data({"images": "img"}, "calib", base_dir=base)


def test_scores_follow_the_labels():
    """Class labels: top-1 / top-5; real targets: MSE; any float run: agreement and SQNR against it."""
    f = np.eye(6, dtype=np.float32)[[0, 1, 2, 3]] * 4
    q = f.copy()
    q[3] = np.float32([0, 0, 0, 3.0, 3.5, 0])  # the quantized run flips the last sample to class 4
    got = scores({"float": f, "integer": q}, np.array([0, 1, 2, 4]))
    assert got["float_top1"] == 0.75 and got["integer_top1"] == 1.0 and got["integer_top5"] == 1.0
    assert got["integer_agreement"] == 0.75
    assert got["integer_sqnr_db"] == pytest.approx(10 * np.log10(64 / (1 + 3.5**2)), rel=1e-5)
    targets = scores({"integer": np.float32([[1, 2], [3, 4]])}, np.float32([[1, 2], [3, 6]]))
    assert targets == {"integer_mse": 1.0}
    unlabelled = scores({"float": f, "fake_quant": f}, None)
    assert unlabelled == {"fake_quant_agreement": 1.0, "fake_quant_sqnr_db": float("inf")}
    assert "integer_top5" not in scores({"integer": np.eye(3)}, np.array([0, 1, 2]))  # fewer than 5 classes
