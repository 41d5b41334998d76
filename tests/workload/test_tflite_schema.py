"""hwsim's flatbuffer reader (hwsim.importers.tflite_schema) agrees with the ``tflite`` package's generated
reader: the same enum values, and every options field at the same slot, type and default."""

import importlib

import pytest

from hwsim.importers import tflite_schema as fb

tflite = pytest.importorskip("tflite")
flatbuffers = pytest.importorskip("flatbuffers")


def _camel(field: str) -> str:
    return "".join(part.capitalize() for part in field.split("_"))


def test_enum_values_match_the_schema():
    """Every tensor type and builtin operator hwsim names has the schema's value."""
    assert all(getattr(tflite.TensorType, name) == value for name, value in fb.TENSOR_TYPES.items())
    assert all(getattr(tflite.BuiltinOperator, name) == value for name, value in fb.BUILTIN_OPERATORS.items())


def _table(name: str, values: dict[str, object]) -> bytes:
    """An options table written by the generated builder, with ``values`` set (the rest left out)."""
    module = importlib.import_module(f"tflite.{name}")
    builder = flatbuffers.Builder(64)
    getattr(module, f"{name}Start")(builder)
    for field, value in values.items():
        getattr(module, f"{name}Add{_camel(field)}")(builder, value)
    builder.Finish(getattr(module, f"{name}End")(builder))
    return bytes(builder.Output())


@pytest.mark.parametrize("name", sorted(fb.OPTIONS))
def test_options_fields_match_the_generated_reader(name):
    """Each field reads as the generated accessor reads it: left out (its default), and set (to a distinct
    value)."""
    spec = fb.OPTIONS[name]
    values = {
        f: (True if fmt == fb.BOOL else 1.5 + k if fmt == fb.FLOAT else 2 + k)
        for k, (f, (_, fmt, _)) in enumerate(spec.items())
    }
    for written in ({}, values):
        buf = _table(name, written)
        theirs = getattr(importlib.import_module(f"tflite.{name}"), name).GetRootAs(buf, 0)
        ours = fb.root(buf).fields(spec)
        assert ours == {f: getattr(theirs, _camel(f))() for f in spec}
        assert ours == {f: written.get(f, default) for f, (_, _, default) in spec.items()}
