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

# Re-exports resolved on first use (PEP 562), so that importing a submodule such as hwsim.quant.commands
# (which the CLI does to build its parser) does not import numba and the whole quantizer.
_EXPORTS = {"QuantizedModel": "hwsim.quant.convert", "quantize_model": "hwsim.quant.convert",
            "PRESETS": "hwsim.quant.recipe", "QuantRecipe": "hwsim.quant.recipe",
            "load_recipe": "hwsim.quant.recipe"}

__all__ = ["PRESETS", "QuantRecipe", "QuantizedModel", "load_recipe", "quantize_model"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hwsim.quant' has no attribute {name!r}")
