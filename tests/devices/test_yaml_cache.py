"""The parse cache of YAML files (hwsim.config.yamlio): a kept parse comes back equal with its lines, without
PyYAML; what JSON cannot keep exactly is parsed every time; a bad file is never kept and errors as before."""

import subprocess
import sys

import pytest

from hwsim.config import yamlio
from hwsim.devices.model import load_device
from hwsim.errors import ConfigError
from hwsim.paths import data_dir


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", "on")
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _no_parse(*_):
    raise AssertionError("parsed again")


def test_a_kept_parse_comes_back_equal(cache_dir, monkeypatch):
    path = data_dir("accelerators") / "ethos_u55_128_like.yaml"
    first = yamlio.load_yaml_with_lines(path)
    assert len(list(cache_dir.rglob("*.json"))) == 1
    monkeypatch.setattr(yamlio, "_load", _no_parse)
    assert yamlio.load_yaml_with_lines(path) == first
    assert load_device(path).spec == load_device("ethos_u55_128_like").spec


def test_an_edited_file_is_parsed_again(cache_dir, tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("a: 1\nb: [2, 3]\n")
    assert yamlio.load_yaml_with_lines(path) == (
        {"a": 1, "b": [2, 3]},
        {(): 1, ("a",): 1, ("b",): 2, ("b", 0): 2, ("b", 1): 2},
    )
    path.write_text("a: 1\n\nb: [4]\n")
    assert yamlio.load_yaml_with_lines(path)[0] == {"a": 1, "b": [4]}
    assert len(list(cache_dir.rglob("*.json"))) == 2


def test_what_json_changes_is_not_kept(cache_dir, tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("when: 2026-01-02\n1: one\n")
    data, _ = yamlio.load_yaml_with_lines(path)
    assert str(data["when"]) == "2026-01-02" and data[1] == "one"
    assert not list(cache_dir.rglob("*.json"))


def test_a_bad_file_is_never_kept(cache_dir, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\na: 2\n")
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"bad.yaml:2: a: duplicate key"):
            yamlio.load_yaml_with_lines(path)
    assert not list(cache_dir.rglob("*.json"))


def test_a_kept_device_needs_no_pyyaml(cache_dir):
    """A second process loading the same shipped device imports no PyYAML."""
    script = (
        "import sys\nfrom hwsim.devices.model import load_device\nload_device('ethos_u55_128_like')\n"
        "print('yaml' in sys.modules)"
    )
    outs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert [o.strip() for o in outs] == ["True", "False"]
