"""Quantization workflow: recipes, calibration, post-training techniques, QAT, conversion to integer graphs.

The public entry points::

    from hwsim.quant import load_recipe, quantize_model
    qm = quantize_model("model.onnx", load_recipe("int8_w_per_channel"), calibration_inputs)
    qm.run_integer(x)          # hwsim's bit-accurate kernels (run_graph) under the recipe's semantics
    qm.run_fake_quant(x)       # the same grids in float32

See :mod:`hwsim.quant.recipe` for the recipe format, :mod:`hwsim.accuracy.evaluate` for accuracy reports,
:mod:`hwsim.quant.mixed` for mixed precision and :mod:`hwsim.quant.qat` for quantization-aware training.
"""

import importlib

# Imported on first use (PEP 562), so that the CLI can register the quantization subcommands without
# importing the integer datapath (numba) for a `hwsim simulate` that never quantizes.
_EXPORTS = {
    "QuantizedModel": "convert",
    "quantize_model": "convert",
    "PRESETS": "recipe",
    "QuantRecipe": "recipe",
    "load_recipe": "recipe",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hwsim.quant' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hwsim.quant.{_EXPORTS[name]}"), name)
