"""The TFLite importer's shape arithmetic, evaluated in Python, gives what numpy gives for each folded op
(the converter's Keras chains are covered end to end in test_keras_tflite_import.py)."""

import numpy as np
import pytest

from hwsim.importers.tflite_fold import FOLDERS, Folded, _as_type
from hwsim.workload.graph import Op

A = np.arange(24).reshape(2, 3, 4)
V = np.array([5, 7, 11, 13])

CASES = [
    (
        "strided_slice",
        [A],
        {
            "begin": (0, 1, 3),
            "end": (2, 3, 0),
            "strides": (1, 1, -1),
            "begin_mask": 0,
            "end_mask": 4,
            "shrink_axis_mask": 0,
            "offset": False,
        },
        A[0:2, 1:3, 3::-1],
    ),
    (
        "strided_slice",
        [V],
        {
            "begin": (1,),
            "end": (2,),
            "strides": (1,),
            "begin_mask": 0,
            "end_mask": 0,
            "shrink_axis_mask": 1,
            "offset": False,
        },
        V[1],
    ),
    ("slice", [A], {"begin": (1, 0), "size": (1, -1)}, A[1:2, 0:]),
    (
        "gather",
        [A, np.array([[2, 0], [1, 1]])],
        {"axis": 1, "batch_dims": 0},
        np.take(A, [[2, 0], [1, 1]], axis=1),
    ),
    ("reshape", [A, np.array([4, -1])], {}, A.reshape(4, -1)),
    ("reshape", [A[:1]], {"squeeze_dims": ()}, np.squeeze(A[:1])),
    ("expand_dims", [V], {"axis": -1}, np.expand_dims(V, -1)),
    ("transpose", [A], {"perm": (2, 0, 1)}, np.transpose(A, (2, 0, 1))),
    ("pack", [V, V * 2], {"axis": 1}, np.stack([V, V * 2], axis=1)),
    ("concat", [A, A[:, :1]], {"axis": -2, "activation": None}, np.concatenate([A, A[:, :1]], axis=-2)),
    ("add", [A, V], {}, A + V),
    ("mul", [A[:, :1], np.array(3)], {}, A[:, :1] * 3),
    ("floor_div", [V - 9, np.array([2, -3, 4, 0])], {}, np.array([-2, 0, 0, 0])),
    ("maximum", [V, np.array([6])], {}, np.maximum(V, 6)),
    (
        "reduce_prod",
        [A[:, :2, :2] + 1, np.array([0, -1])],
        {"keep_dims": True},
        np.prod(A[:, :2, :2] + 1, axis=(0, 2), keepdims=True),
    ),
    ("sum", [A, np.array([1])], {"keep_dims": False}, A.sum(axis=1)),
    ("fill", [np.array([2, 3]), np.array(7)], {}, np.full((2, 3), 7)),
    ("range", [np.array(2), np.array(11), np.array(3)], {}, np.arange(2, 11, 3)),
]


@pytest.mark.parametrize("kind,args,attrs,expected", CASES, ids=[c[0] for c in CASES])
def test_folded_values_match_numpy(kind, args, attrs, expected):
    """Values and shape equal numpy's."""
    folded = [Folded.known(np.shape(a), np.ravel(a).tolist()) for a in args]
    out = FOLDERS[kind](Op("0:OP", kind, [], ["y"], attrs), folded, None)
    assert out.shape == np.shape(expected)
    assert list(out.data) == np.ravel(expected).tolist()


def test_unknown_entries_follow_the_values():
    """An unknown batch entry keeps its mark through slicing and packing."""
    shape = Folded((4,), (1, 1, 1, 64), (True, False, False, False))
    first = FOLDERS["strided_slice"](
        Op(
            "0:OP",
            "strided_slice",
            [],
            ["y"],
            {
                "begin": (0,),
                "end": (1,),
                "strides": (1,),
                "begin_mask": 0,
                "end_mask": 0,
                "shrink_axis_mask": 1,
                "offset": False,
            },
        ),
        [shape],
        None,
    )
    pack = Op("1:OP", "pack", [], ["y"], {"axis": 0})
    packed = FOLDERS["pack"](pack, [first, Folded.known((), (-1,))], None)
    assert packed.data == (1, -1) and packed.unknown == (True, False)


def test_conversion_wraps_as_numpy_does():
    """Results are cast to the output type as numpy casts (wrapping), booleans as such."""
    values = [2**31, -1, 300]
    assert _as_type(values, "int32") == np.array(values).astype(np.int32).tolist()
    assert _as_type(values, "uint8") == np.array(values).astype(np.uint8).tolist()
    assert _as_type([0, 2], "bool") == [False, True]
