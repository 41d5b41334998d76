"""The on-disk cache of weight encodings (hwsim.cache): a stored encoding comes back equal, a damaged or
foreign entry is recomputed, HWSIM_CACHE=off writes nothing, and processes share a folder."""

import dataclasses
import itertools
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
    script = (
        "from tests.schedule.ethos_u.test_weight_cache import _encode\nimport dataclasses\n"
        "print(dataclasses.astuple(_encode()))"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [r.communicate()[0].strip() for r in runs]
    assert all(r.returncode == 0 for r in runs)
    assert outs == [str(dataclasses.astuple(_encode()))] * 2
    assert len(list(cache_dir.rglob("*.json"))) == 1 and not list(cache_dir.rglob("*.tmp"))


def test_stand_in_weights_encode_as_their_values_and_are_made_only_on_a_miss(cache_dir, monkeypatch):
    """A shapes-only workload's stand-ins encode exactly as the array they stand for; once stored, their
    encoding comes back without making (or hashing) the values."""
    from hwsim.schedule.ethos_u import lowering

    stand_in = lowering.StandInWeights((64, 96), 8)
    params = we.EncodingParams("u55", 1, 16, "DepthFirst", 8)
    first = we.encode_weights("FullyConnected", stand_in, 0, params, [0, 64])
    assert first == we.encode_weights("FullyConnected", np.array(stand_in.values()), 0, params, [0, 64])
    we._encode_cached.cache_clear()
    monkeypatch.setattr(lowering.StandInWeights, "values", lambda self: pytest.fail("values made again"))
    assert we.encode_weights("FullyConnected", stand_in, 0, params, [0, 64]) == first


_U85 = dict(ifm_block_depth=64, ofm_ublock_depth=16)


@pytest.mark.parametrize(
    ("op_type", "shape", "params", "slices"),
    [
        (
            "FullyConnected",
            (600, 40),
            we.EncodingParams("u55", 2, 48, "DepthFirst", 8),
            (0, 48, 96, 288, 336, 600),
        ),
        (
            "Conv2D",
            (520, 3, 3, 8),
            we.EncodingParams("u55", 4, 64, "PartKernel", 8),
            (*range(0, 513, 64), 520),
        ),
        (
            "DepthwiseConv2D",
            (1, 3, 3, 700),
            we.EncodingParams("u55", 1, 32, "Depthwise", 8),
            (0, 32, 288, 320, 700),
        ),
        (
            "FullyConnected",
            (560, 64),
            we.EncodingParams("u85", 1, 16, "DepthFirst", 8, macs=256, **_U85),
            tuple(range(0, 561, 16)),
        ),
        (
            "FullyConnected",
            (560, 64),
            we.EncodingParams("u85", 2, 16, "DepthFirst", 8, macs=512, fast=True, **_U85),
            (0, 272, 560),
        ),
        # slices deeper than the period: one period's stream repeated, then the remainder
        ("FullyConnected", (1100, 300), we.EncodingParams("u55", 1, 16, "DepthFirst", 8), (0, 1100)),
        ("FullyConnected", (600, 40), we.EncodingParams("u55", 2, 32, "DepthFirst", 8), (0, 32, 600)),
        # blocks of 48: the least period they tile twice is 768 channels, deeper than these: encoded whole
        ("Conv2D", (600, 3, 3, 64), we.EncodingParams("u55", 1, 48, "DepthFirst", 8), (0, 600)),
        (
            "FullyConnected",
            (600, 200),
            we.EncodingParams("u85", 1, 48, "DepthFirst", 8, macs=256, **_U85),
            (0, 600),
        ),
        ("Conv2D", (520, 3, 3, 8), we.EncodingParams("u55", 2, 64, "PartKernel", 8), (0, 520)),
        ("DepthwiseConv2D", (1, 3, 3, 700), we.EncodingParams("u55", 1, 32, "Depthwise", 8), (0, 700)),
        (
            "FullyConnected",
            (700, 64),
            we.EncodingParams("u85", 1, 16, "DepthFirst", 8, macs=256, **_U85),
            (0, 700),
        ),
        (
            "FullyConnected",
            (700, 64),
            we.EncodingParams("u85", 2, 16, "DepthFirst", 8, macs=512, fast=True, **_U85),
            (0, 700),
        ),
    ],
)
def test_weights_that_repeat_encode_each_repeated_slice_once_and_as_the_whole_array(
    cache_dir, op_type, shape, params, slices
):
    """Weights whose output channels repeat (as stand-ins do, every STAND_IN_PERIOD) send each repeated slice
    once: the result equals encoding the whole array slice by slice (slices starting on and off the period).
    The codes here are denser in some channels than others, so that a stream's size depends on its order."""
    axis, n = (3 if op_type == "DepthwiseConv2D" else 0), shape[0 if op_type != "DepthwiseConv2D" else 3]
    period = 256
    drawn = list(shape)
    drawn[axis] = period
    rng = np.random.default_rng(7)
    dense = np.where(np.arange(period) // 3 % 2, 0.05, 0.95)  # channels alternate sparse and dense
    dense = dense.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    base = rng.integers(-30, 31, size=drawn) * (rng.random(drawn) < dense)
    full = np.concatenate([base] * -(-n // period), axis=axis).take(range(n), axis).astype(np.int8)

    class Repeating:
        digest, period = b"repeating", 256

        def values(self):
            return full

    whole = we.encode_weights(op_type, Repeating(), 0, params, slices)
    assert whole == we.encode_weights(op_type, full, 0, params, slices)
    alone = [
        we.encode_weights(op_type, full.take(range(d0, d1), axis), 0, params, (0, d1 - d0))
        for d0, d1 in itertools.pairwise(slices)
    ]
    sizes = tuple(a.range_sizes[0] for a in alone)
    assert whole.range_sizes == sizes and (len(set(sizes)) > 1 or len(sizes) == 1)


def test_stand_ins_repeat_every_period_channels():
    from hwsim.schedule.ethos_u import lowering

    for shape, axis in (((600, 40), 0), ((1, 3, 3, 700), 3), ((300, 1, 1, 8), 0)):
        full = lowering.StandInWeights(shape, 8).values()
        n, period = shape[axis], lowering.STAND_IN_PERIOD
        assert full.shape == shape and len(np.unique(full)) > 200
        assert np.array_equal(full.take(range(period, n), axis), full.take(range(n - period), axis))
        half = period // 2
        assert not np.array_equal(full.take(range(half, n), axis), full.take(range(n - half), axis))


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


def test_a_stored_u85_block_config_comes_back_equal(cache_dir, monkeypatch):
    """U85 block configs are kept as U55/U65 ones are: the stored config comes back equal without a search,
    under a key that is the same in every process (the accelerator's sets sorted, not in hash order)."""
    import os

    from hwsim.schedule.ethos_u import blocks_u85
    from hwsim.schedule.ethos_u.arch_u85 import U85_ACCELERATORS
    from hwsim.schedule.ethos_u.blocks import BlockQuery
    from hwsim.schedule.ethos_u.geometry import Kernel

    arch = U85_ACCELERATORS["ethos-u85-256"]
    q = BlockQuery("Conv2D", (1, 56, 56, 24), (1, 56, 56, 144), None, 8, 8, Kernel())
    blocks_u85.find_block_config.cache_clear()
    first = blocks_u85.find_block_config(arch, q)
    assert len(list(cache_dir.rglob("*.json"))) == 1
    blocks_u85.find_block_config.cache_clear()
    monkeypatch.setattr(blocks_u85, "_find_block_config", lambda *a: pytest.fail("searched again"))
    assert blocks_u85.find_block_config(arch, q) == first
    blocks_u85.find_block_config.cache_clear()
    script = (
        "from hwsim.schedule.ethos_u import blocks_u85\n"
        "from hwsim.schedule.ethos_u.arch_u85 import U85_ACCELERATORS\n"
        "print(blocks_u85._arch_key(U85_ACCELERATORS['ethos-u85-256']))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert keys == {blocks_u85._arch_key(arch)}
