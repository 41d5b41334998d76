"""QAT through torch: the fake quantizer is hwsim's bit for bit, and the trained model runs on the integer
path."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.numerics import ops
from hwsim.numerics.formats import IntFormat

torch = pytest.importorskip("torch")

from hwsim.quant.qat import fake_quant, train_qat  # noqa: E402


@given(
    seed=st.integers(0, 2**31),
    bits=st.sampled_from([2, 4, 8, 16]),
    scale_exp=st.floats(-12, 4),
    zero=st.integers(-8, 8),
    ties=st.booleans(),
)
def test_forward_equals_ops_fake_quantize_bit_for_bit(seed, bits, scale_exp, zero, ties):
    """fake_quant's forward values equal hwsim.numerics.ops.fake_quantize exactly (ties and clamping
    included)."""
    rng = np.random.default_rng(seed)
    fmt = IntFormat(bits)
    scale = np.float32(2.0**scale_exp * rng.uniform(0.5, 1.5))
    zero = int(np.clip(zero, fmt.min, fmt.max))
    if ties:  # exact half-way values x = (k + 0.5) * scale
        x = ((rng.integers(-2 * fmt.max, 2 * fmt.max, 300) + 0.5) * scale).astype(np.float32)
    else:
        x = (rng.normal(size=300) * scale * fmt.max * 1.5).astype(np.float32)
    expected = ops.fake_quantize(x, scale, zero, fmt)
    got = fake_quant(torch.from_numpy(x), torch.tensor(scale), float(zero), fmt.min, fmt.max).numpy()
    assert np.array_equal(got.view(np.int32), expected.view(np.int32))


def test_per_channel_forward_matches_too():
    """Per-channel scales (weights) give the same values as ops.fake_quantize along axis 0."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 7)).astype(np.float32)
    s = rng.uniform(0.01, 0.2, 5).astype(np.float32)
    expected = ops.fake_quantize(w, s, 0, "int4n", axis=0)
    got = fake_quant(torch.from_numpy(w), torch.from_numpy(s).view(-1, 1), 0.0, -7, 7).numpy()
    assert np.array_equal(got, expected)


def test_gradients_are_ste_and_lsq():
    """d/dx is 1 inside the range and 0 where clamped; d/ds is round(x/s) - x/s inside, the bound outside."""
    x = torch.tensor([0.26, -0.74, 5.0], requires_grad=True)
    s = torch.tensor(0.5, requires_grad=True)
    fake_quant(x, s, 0.0, -4, 3).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0]
    expected = (round(0.52) - 0.52) + (round(-1.48) + 1.48) + 3
    assert s.grad.item() == pytest.approx(expected, rel=1e-5)


def test_qat_runs_and_comes_back_to_the_integer_path():
    """One epoch of QAT on a 2-bit MLP improves its integer-path accuracy on the training data."""
    from hwsim.quant.convert import quantize_model
    from hwsim.quant.recipe import QatSpec, QuantRecipe
    from tests.quant.graphs import mlp

    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 16)).astype(np.float32)
    teacher = rng.normal(size=(16, 8)).astype(np.float32)
    y = (x @ teacher).argmax(1)
    qm = quantize_model(mlp(seed=1), QuantRecipe.model_validate({"weights": {"bits": 2}}), x[:128])
    before = (qm.run_integer(x)["y"].argmax(1) == y).mean()
    trained = train_qat(qm, x, y, QatSpec(epochs=3, learning_rate=1e-2))
    after_int = trained.run_integer(x)["y"]
    after_fq = trained.run_fake_quant(x)["y"]
    assert (after_int.argmax(1) == y).mean() > before
    assert trained.recipe.name.endswith("+qat")
    assert (after_int.argmax(1) == after_fq.argmax(1)).mean() > 0.95
