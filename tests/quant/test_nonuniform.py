"""Non-uniform weight quantizers: log2 levels, k-means codebooks, binary and ternary weights."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hwsim.quant.nonuniform import binary_weights, kmeans_1d, kmeans_weights, log2_weights, ternary_weights


def rows_st():
    return st.builds(
        lambda seed, c, k: np.random.default_rng(seed).normal(size=(c, k)).astype(np.float32),
        st.integers(0, 2**31),
        st.integers(1, 5),
        st.integers(2, 60),
    )


@given(w=rows_st(), bits=st.sampled_from([3, 4, 5]))
def test_log2_values_are_signed_powers_of_two_at_the_nearest_level(w, bits):
    """Every value is 0 or +-2**j (j < n) and no other level is nearer to the weight."""
    q = log2_weights(w, bits)
    n = (1 << (bits - 1)) - 1
    levels = np.array([0] + [1 << j for j in range(n)])
    mags = np.abs(q.values)
    assert np.isin(mags, levels).all()
    assert np.all((q.values == 0) | (np.sign(q.values) == np.sign(w)))
    target = np.abs(w) / q.scale[:, None]
    best = np.abs(target[..., None] - levels).min(axis=-1)
    assert np.allclose(np.abs(target - mags), best, atol=1e-5)


@given(w=rows_st(), bits=st.sampled_from([1, 2, 3, 4]))
def test_kmeans_values_come_from_each_channels_codebook(w, bits):
    """Each value is its channel's lookup-table entry at its stored index, with at most 2**bits entries."""
    q = kmeans_weights(w, bits)
    assert q.lut.shape == (w.shape[0], 1 << bits)
    assert q.index.max() < (1 << bits)
    assert np.array_equal(q.values, np.take_along_axis(q.lut, q.index, axis=1))
    assert np.abs(q.values).max() <= 127


def test_kmeans_is_deterministic_and_finds_clusters():
    """Two well separated clusters give their means as centroids, the same on every call."""
    x = np.concatenate([np.full(50, -1.0), np.full(50, 2.0)])
    assert np.allclose(kmeans_1d(x, 2), [-1.0, 2.0])
    assert np.array_equal(kmeans_1d(x, 2), kmeans_1d(x, 2))


@given(w=rows_st())
def test_binary_is_sign_times_mean_magnitude(w):
    """Binary values are +-1 with the sign of w, scaled by each channel's mean |w|."""
    q = binary_weights(w)
    assert np.array_equal(q.values, np.where(w >= 0, 1, -1))
    assert np.allclose(q.scale, np.maximum(np.abs(w).mean(axis=1), 1e-12), rtol=1e-6)


@given(w=rows_st())
def test_ternary_zeroes_small_weights(w):
    """Ternary values are 0 exactly where |w| <= 0.7 mean |w| of the channel, else sign(w)."""
    q = ternary_weights(w)
    delta = 0.7 * np.abs(w).mean(axis=1, keepdims=True)
    assert np.array_equal(q.values, np.where(np.abs(w) > delta, np.sign(w), 0).astype(np.int64))
