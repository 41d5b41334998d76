"""The on-disk cache of weight encodings (hwsim.cache): a stored encoding comes back equal, a damaged or
foreign entry is recomputed, HWSIM_CACHE=off writes nothing, and processes share a folder."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from hwsim.schedule.ethos_u import weight_encoding as we


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", "on")
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path))
    we._encode_cached.cache_clear()
    yield tmp_path
    we._encode_cached.cache_clear()


def _encode():
    w = (np.arange(16 * 3 * 3 * 8) % 23 - 11).astype(np.int8).reshape(16, 3, 3, 8)
    return we.encode_weights("Conv2D", w, 0, we.EncodingParams("u55", 1, 16, "DepthFirst", 8), [0, 8, 16])


def test_a_stored_encoding_comes_back_equal(cache_dir):
    first = _encode()
    entries = list(cache_dir.rglob("*.json"))
    assert len(entries) == 1 and not list(cache_dir.rglob("*.tmp"))
    we._encode_cached.cache_clear()
    again = _encode()
    assert again == first and again is not first and isinstance(again.range_sizes, tuple)


def test_a_damaged_or_foreign_entry_is_recomputed(cache_dir):
    first = _encode()
    (entry,) = cache_dir.rglob("*.json")
    for text in ("{not json", '{"key": "another", "value": {}}'):
        entry.write_text(text)
        we._encode_cached.cache_clear()
        assert _encode() == first


def test_off_writes_nothing(cache_dir, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", "off")
    _encode()
    assert not list(cache_dir.rglob("*"))


def test_processes_share_the_folder(cache_dir):
    """Two processes encoding the same weights at once both succeed and agree with this one."""
    script = ("from tests.schedule.ethos_u.test_weight_cache import _encode\nimport dataclasses\n"
              "print(dataclasses.astuple(_encode()))")
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    outs = [r.communicate()[0].strip() for r in runs]
    assert all(r.returncode == 0 for r in runs)
    assert outs == [str(dataclasses.astuple(_encode()))] * 2
    assert len(list(cache_dir.rglob("*.json"))) == 1 and not list(cache_dir.rglob("*.tmp"))


def test_stand_in_weights_encode_as_their_values_and_are_made_only_on_a_miss(cache_dir, monkeypatch):
    """A shapes-only workload's stand-ins encode exactly as the array they stand for; once stored, their
    encoding comes back without making (or hashing) the values."""
    from hwsim.schedule.ethos_u import lowering

    stand_in = lowering.StandInWeights("fc.weight", (64, 96), 8)
    params = we.EncodingParams("u55", 1, 16, "DepthFirst", 8)
    first = we.encode_weights("FullyConnected", stand_in, 0, params, [0, 64])
    assert first == we.encode_weights("FullyConnected", np.array(stand_in.values()), 0, params, [0, 64])
    we._encode_cached.cache_clear()
    monkeypatch.setattr(lowering.StandInWeights, "values", lambda self: pytest.fail("values made again"))
    assert we.encode_weights("FullyConnected", stand_in, 0, params, [0, 64]) == first


def test_not_sparse_is_kept_like_an_encoding(cache_dir, monkeypatch):
    """Asking for U85's 2:4 sparse format of dense weights raises, and the answer is stored: the second
    run raises without encoding (finding it orders every weight)."""
    w = (np.arange(16 * 64) % 13 + 1).astype(np.int8).reshape(16, 64)
    params = we.EncodingParams("u85", 1, 16, "DepthFirst", 8, ifm_block_depth=64, macs=256, sparse=True)
    for attempt in range(2):
        with pytest.raises(we.WeightsNotSparse):
            we.encode_weights("FullyConnected", w, 0, params, [0, 16])
        we._encode_cached.cache_clear()
        monkeypatch.setattr(we, "_encode", lambda *a: pytest.fail("encoded again"))
