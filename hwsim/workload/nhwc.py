"""Index arithmetic for moving an NCHW graph to NHWC storage: permutations, axes and padding.

A rank-4 ONNX tensor is NCHW; its TFLite counterpart holds the same values as NHWC. These helpers say where
an NCHW axis lands, what an NCHW transpose becomes on NHWC tensors, when a transpose moves no data (only
axes of size 1, which TFLite's converter turns into a RESHAPE) and how explicit ONNX padding reads as
TFLite's SAME or as the explicit padding Vela gives a convolution when it folds a PAD into it.
"""

from __future__ import annotations

TO_NHWC = (0, 2, 3, 1)  # nhwc = nchw.transpose(TO_NHWC)
TO_NCHW = (0, 3, 1, 2)  # nchw = nhwc.transpose(TO_NCHW)


def permute(shape: tuple, perm: tuple[int, ...]) -> tuple:
    """``shape`` with its axes in the order ``perm`` (numpy.transpose's convention).

    >>> permute((1, 8, 5, 7), TO_NHWC)
    (1, 5, 7, 8)
    """
    return tuple(shape[p] for p in perm)


def nhwc_axis(axis: int) -> int:
    """Where NCHW axis ``axis`` (negative counts from the end) sits in NHWC.

    >>> [nhwc_axis(a) for a in (0, 1, 2, 3, -1)]
    [0, 3, 1, 2, 2]
    """
    return TO_NHWC.index(axis % 4)


def conjugate(perm: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that does on NHWC tensors what ``perm`` does on NCHW ones.

    ONNX's NCHW -> NHWC transpose at the end of a network becomes (0, 2, 3, 1) of the NHWC-stored data:

    >>> conjugate((0, 2, 3, 1)), conjugate((0, 1, 2, 3))
    ((0, 2, 3, 1), (0, 1, 2, 3))
    """
    return tuple(TO_NCHW[perm[TO_NHWC[i]]] for i in range(4))


def moves_data(shape: tuple, perm: tuple[int, ...]) -> bool:
    """False when ``perm`` only moves axes of size 1: the elements keep their order (a reshape).

    >>> moves_data((1, 1, 1, 32), TO_NCHW), moves_data((1, 4, 4, 32), TO_NCHW)
    (False, True)
    """

    def big(axes):
        return [a for a in axes if (shape[a] or 1) != 1]

    return big(perm) != big(range(len(shape)))


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of TFLite's SAME along one axis.

    >>> same_pads(32, 3, 1), same_pads(32, 3, 2), same_pads(33, 3, 2)
    ((1, 1), (0, 1), (1, 1))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def folded_pad_after(size: int, stride: int, dilated_kernel: int, before: int, after: int) -> int:
    """The after-padding Vela keeps when it folds a PAD into a convolution (``ReplacePadByExplicitPadding``
    in ``graphir_optimiser.cpp``): padding the stride never reaches is dropped.

    >>> folded_pad_after(32, 2, 3, 1, 1), folded_pad_after(32, 1, 3, 1, 1)
    (0, 1)
    """
    total = max(0, (-(-size // stride) - 1) * stride + dilated_kernel - size)
    diff = after % stride - (total - before) % stride
    return max(0, after - diff - (0 if diff >= 0 else stride))
