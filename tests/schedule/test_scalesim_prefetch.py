"""USER-mode prefetch ranks in closed form (:mod:`hwsim.schedule.scalesim.prefetch`) against the address-level
model they replace: the prefetch sequence built from the operand matrices and a request-by-request scan."""

from __future__ import annotations

import dataclasses
import random

import pytest

from hwsim.schedule.scalesim.buffers import PrefetchReadBuffer
from hwsim.schedule.scalesim.demand import LayerDemand
from hwsim.schedule.scalesim.layer_sim import _address_range, _windows_overlap
from hwsim.schedule.scalesim.layers import ScaleSimLayer
from hwsim.schedule.scalesim.prefetch import RankedBlocks


def _cases(seed: int, count: int):
    """Small random layers (some reading past the IFMAP's edge, some with gaps between windows) on
    non-square arrays, every dataflow, and each operand whose words are all distinct."""
    rng = random.Random(seed)
    for _ in range(count):
        ih, iw = rng.randint(1, 14), rng.randint(1, 14)
        fh, fw = rng.randint(1, min(3, ih)), rng.randint(1, min(3, iw))
        layer = ScaleSimLayer(
            "x", ih, iw, fh, fw, rng.randint(1, 6), rng.randint(1, 24), rng.randint(1, 3), rng.randint(1, 3)
        )
        rows, cols = rng.randint(1, 8), rng.randint(1, 8)
        for dataflow in ("os", "ws", "is"):
            for name in ("ifmap", "filter"):
                if name == "filter" or not _windows_overlap(layer):
                    yield layer, LayerDemand(layer, dataflow, rows, cols), name, rng


def test_the_cases_cover_edges_padding_and_both_orders():
    kinds = {(layer.reads_past_edge, d.prefetch_layout(name)[3]) for layer, d, name, _ in _cases(1, 60)}
    assert kinds == {(False, False), (False, True), (True, False), (True, True)}


def test_ranks_and_lines_equal_the_prefetch_sequence():
    """Each block's requests in demand order carry the rank of their word in the prefetch sequence (``-1``
    left out) and their demand line; the block bounds enclose its ranks."""
    checked = 0
    for _, d, name, _ in _cases(1, 60):
        seq, slots = d.prefetch_sequence(name)
        rank_of = {a: i for i, a in enumerate(seq.tolist())}
        op = d.operand(name)
        ids, words, word_slots, line_of = op.block_sequence()
        blocks = RankedBlocks(d, name)
        assert (blocks.order.words, blocks.order.slots) == (seq.size, slots)
        for fold, b in enumerate(ids.tolist()):
            mine = blocks.ids[fold]
            want = [rank_of[a] for a in words[b].tolist()]
            runs = blocks.runs(mine)
            got = [run.rank_at(k) for run in runs for k in range(run.size)]
            assert got == want
            assert [run.line_at(k) for run in runs for k in range(run.size)] == [
                line_of(fold, s) - fold * op.lines_per_fold for s in word_slots[b].tolist()
            ]
            assert not want or blocks.low[mine] <= min(want) <= max(want) <= blocks.high[mine]
            checked += len(want)
    assert checked > 50_000


@pytest.mark.parametrize("seed", [2, 3])
def test_window_shifts_equal_a_request_by_request_scan(seed):
    """Small SRAMs (sets of 1 to 30 words) and bandwidths: every shift, on the same demand line, and the
    window where it ends, as the scan over the addresses finds them."""
    shifts = 0
    for _, d, name, rng in _cases(seed, 50):
        size, bandwidth = rng.choice([100, 150, 230, 400, 1024, 3000]), rng.choice([1, 3, 10])
        reference = PrefetchReadBuffer(size, bandwidth)
        seq, slots = d.prefetch_sequence(name)
        reference.setup(seq, slots, _address_range(d, name))
        reference.consume(d.operand(name).streams())
        ranked = PrefetchReadBuffer(size, bandwidth)
        blocks = RankedBlocks(d, name)
        ranked.configure(blocks.order.words, blocks.order.slots)
        ranked.consume_ranked(blocks)
        assert (ranked.misses, ranked.start) == (reference.misses, reference.start)
        shifts += len(reference.misses)
    assert shifts > 500


def test_first_and_last_lines_from_the_fold_extents():
    """Where the only ``-1`` entries are padding, the first and last demand lines follow from the extents
    of the first and last folds; they equal a search of the built blocks."""
    for layer, d, _, _ in _cases(4, 40):
        for name in ("ifmap", "filter", "ofmap"):
            op = d.operand(name)
            assert op.padding_only == (name != "ifmap" or not layer.reads_past_edge)
            searched = dataclasses.replace(op, padding_only=False)
            assert op.first_and_last_lines() == searched.first_and_last_lines()
