"""Quantization workflow: recipes, calibration, post-training techniques, QAT, conversion to integer graphs.

The public entry points::

    from hwsim.quant import load_recipe, quantize_model
    qm = quantize_model("model.onnx", load_recipe("int8_w_per_channel"), calibration_inputs)
    qm.run_integer(x)          # hwsim's bit-accurate kernels (run_graph) under the recipe's semantics
    qm.run_fake_quant(x)       # the same grids in float32

See :mod:`hwsim.quant.recipe` for the recipe format, :mod:`hwsim.accuracy.evaluate` for accuracy reports,
:mod:`hwsim.quant.mixed` for mixed precision and :mod:`hwsim.quant.qat` for quantization-aware training.
"""

from hwsim.quant.convert import QuantizedModel, quantize_model
from hwsim.quant.recipe import PRESETS, QuantRecipe, load_recipe

__all__ = ["PRESETS", "QuantRecipe", "QuantizedModel", "load_recipe", "quantize_model"]
