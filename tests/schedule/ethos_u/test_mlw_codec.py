"""The MLW codec's stream sizes: hand-derived cases and a value-by-value reference of its parameter search."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.schedule.ethos_u import mlw_codec as mc


def test_all_zero_stream():
    """100 zeros take 32 bytes and send 99 zeros as runs.

    Zero is the only value and comes in one run, so the section uses zero runs; with nothing else
    left the palette is empty (2-bit entries) and the codec codes the first zero as a weight, symbol
    ``0 - direct_offset + 1 = 1``, with runs [0, 99] around it. Bits: slice header 23, palette header
    13; the weight under divisor 0 is 1 unary slot (a 12-bit chunk) plus 1 second-level bit = 13;
    the runs under divisor 0 take 1 + 100 = 101 unary slots, 9 chunks of 12 = 108. 157 bits, plus the
    3-bit end marker, padded to 128 bits: 256 bits = 32 bytes.
    """
    res = mc.encode(np.zeros(100, np.int16))
    assert (res.size_bytes, res.zero_count) == (32, 99)
    assert np.flatnonzero(res.used).tolist() == [256]


def test_sixteen_value_palette():
    """1024 weights cycling through 16 values take 544 bytes: a 16-entry palette and 4 bits per weight.

    All 16 values fit the palette (sign-magnitude entries up to 32, so 6 bits each) and no zeros occur.
    Uncompressed 4-bit indices beat every Golomb-Rice divisor over a cycle, so the search keeps that
    one slice. Bits: 23 + 13 + 16 * 6 = 132 of headers, 1024 * 4 = 4096 of weights, 3 of end marker:
    4231, padded to 4352 = 544 bytes.
    """
    values = np.tile(np.arange(1, 17), 64).astype(np.int16)
    assert mc.encode(values).size_bytes == 544


def test_one_channel_stream():
    """Eight 1s then 248 zeros take 48 bytes, 248 of them sent as zero runs.

    The palette is {1} plus the never-indexed filler entry 0 (2 entries of 2 bits), so the weights are
    eight index-0 symbols: 8 unary slots, one 12-bit chunk. The nine runs (eight 0s, then 248) take
    8 + 249 = 257 slots, 22 chunks = 264 bits. 23 + 13 + 4 + 12 + 264 + 3 = 319 bits, padded to 384.
    """
    res = mc.encode(np.array([1] * 8 + [0] * 248, np.int16))
    assert (res.size_bytes, res.zero_count) == (48, 248)


@pytest.mark.parametrize("no_palette, expected", [(False, 64), (True, 160)])
def test_fast_format_size(no_palette, expected):
    """100 values of 3 kinds: 256-bit header + 2 bits each = 456 bits, padded to 512 (64 bytes); raw, 8 bits
    each: 1056 bits, padded to 1280 (160 bytes)."""
    values = np.array([1, 2, 3] * 33 + [1], np.int16)
    assert mc.encode_fast(values, no_palette=no_palette) == expected


@pytest.mark.parametrize(
    ("base_len", "repeats", "tail_len"),
    [(76_800, 5, 1_000), (131_072, 3, 0), (50_000, 1, 90_000), (40_000, 9, 131_072), (300, 7, 0)],
)
def test_a_repeating_stream_sizes_as_the_stream_it_stands_for(base_len, repeats, tail_len):
    """``encode_repeating`` equals ``encode`` of the built stream: sections on and off the period, a tail
    crossing a section boundary, one longer than a section; the values are sparse and uneven so that
    every section's size depends on where it starts."""
    rng = np.random.default_rng(base_len + repeats)
    base, tail = (
        (rng.integers(-9, 10, n) * (rng.random(n) < np.linspace(0.1, 0.9, n))).astype(np.int16)
        for n in (base_len, tail_len)
    )
    want = mc.encode(np.concatenate([base] * repeats + [tail]))
    got = mc.encode_repeating(base, repeats, tail)
    assert (got.size_bytes, got.zero_count) == (want.size_bytes, want.zero_count)
    assert np.array_equal(got.used, want.used)


def test_values_out_of_range():
    """A corrected weight outside [-255, 255] cannot be coded and is refused with its range."""
    with pytest.raises(ValueError, match=r"\[-255, 255\].*-300"):
        mc.encode(np.array([-300, 4], np.int16))


def _naive_weight_search(symbols: np.ndarray, uncompressed_bits: int) -> list[tuple[int, int]]:
    """``search_grc_params`` for weights, value by value and configuration by configuration."""
    divs = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
    counts, reset, coded = [0] * 13, [0] * 13, [False] * 13
    active, active_count, slices = -1, 0, []
    for i, v in enumerate(int(s) for s in symbols):
        best, best_count = 0, None
        for j in range(13):
            if j == 12:
                bits, ok = (uncompressed_bits if uncompressed_bits else 100), True
            else:
                q = v >> divs[j]
                trunc = j >= 6
                bits = (min(q + 1, 2) if trunc else q + 1) + divs[j]
                ok = q <= 2 if trunc else q <= 31
            if ok:
                counts[j] = (counts[j] if coded[j] else active_count) + bits
                if best_count is None or counts[j] < best_count:
                    best, best_count = j, counts[j]
            else:
                reset[j] = i + 1
                counts[j] += 40
            coded[j] = ok
        if active == -1 or not coded[active] or (best != active and best_count + 40 < active_count):
            if active != -1:
                if counts[best] < counts[active] and reset[best] <= reset[active]:
                    active = best
                else:
                    slices.append((active, i))
            active = best
        active_count = counts[active]
    if not slices or slices[-1][0] != active:
        slices.append((active, len(symbols)))
    else:
        slices[-1] = (active, len(symbols))
    return slices


def _naive_zero_run_search(runs: np.ndarray) -> int:
    """``search_grc_params`` for zero runs (every configuration codes every run), value by value."""
    counts, active = [0] * 4, -1
    for r in (int(x) for x in runs):
        previous = counts[active] if active >= 0 else 0
        counts = [c + (r >> d) + 1 + d for d, c in enumerate(counts)]
        best = min(range(4), key=lambda d: (counts[d], d))
        if active == -1 or (best != active and counts[best] + 40 < previous):
            active = best
    return active


def _streams(seed: int) -> list[np.ndarray]:
    """Symbol streams shaped like the codec's input: mostly small palette indices, bursts of large direct
    values, long stretches of one kind, so that configurations drop out, come back and switch."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(12):
        parts = []
        for _ in range(rng.integers(1, 6)):
            n = int(rng.integers(1, 1500))
            kind = rng.integers(0, 4)
            if kind == 0:
                parts.append(rng.integers(0, 4, n))
            elif kind == 1:
                parts.append(rng.geometric(rng.uniform(0.05, 0.9), n) - 1)
            elif kind == 2:
                parts.append(rng.integers(0, 512, n))
            else:
                rare_large = rng.random(n) < 0.03
                parts.append(np.where(rare_large, rng.integers(100, 512, n), rng.integers(0, 12, n)))
        out.append(np.clip(np.concatenate(parts), 0, 511).astype(np.int16))
    return out


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("uncompressed_bits", [0, 5, 9])
def test_weight_search_matches_reference(seed, uncompressed_bits):
    """The event-driven search finds the same slices as stepping the codec's search value by value."""
    for symbols in _streams(seed):
        if uncompressed_bits and symbols.max() >= 1 << uncompressed_bits:
            symbols = symbols % (1 << uncompressed_bits)  # uncompressed mode exists only if every symbol fits
        expected = _naive_weight_search(symbols, uncompressed_bits)
        assert mc._search_weights(symbols, uncompressed_bits) == expected


@pytest.mark.parametrize("seed", range(4))
def test_zero_run_search_matches_reference(seed):
    """The zero-run search ends on the same configuration as stepping it run by run."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(20):
        runs = (rng.geometric(rng.uniform(0.02, 0.9), int(rng.integers(1, 3000))) - 1).astype(np.int32)
        runs[rng.random(runs.size) < 0.1] *= int(rng.integers(1, 40))
        assert mc._search_zero_runs(runs) == _naive_zero_run_search(runs)
