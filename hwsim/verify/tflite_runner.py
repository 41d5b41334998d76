"""Run the real TFLite interpreter (or TFLite Micro's) on models, in a process of its own that serves jobs.

Some resolvers abort the whole process on some models (BUILTIN_REF at an int8 SOFTMAX, for one), so
hwsim never runs them in its own process. ``python -m hwsim.verify.tflite_runner`` reads jobs from stdin,
one JSON line each: ``{"resolvers": [...], "model": MODEL, "inputs": IN, "folder": OUTDIR}``. It reads the
inputs from the ``.npz`` IN (arrays in model-input order), writes, per resolver in turn, every readable
tensor to OUTDIR/<resolver>.npz, keyed ``t<index>`` by its index in the flatbuffer (names need not be
unique), and replies ``done`` on stdout. The process lives on for the next job, so the interpreter is
imported once (TensorFlow's takes seconds); a Python error ends it like an abort does, so every job after a
failure starts in a fresh process (:mod:`hwsim.verify.interpreter_process` runs it).
"""

from __future__ import annotations

import json
import os
import sys

#: run name -> (interpreter, op resolver). The name is also the semantics hwsim runs beside it: TensorFlow's
#: interpreter (2.21, what the tflite-* and xnnpack semantics were measured on) or LiteRT's (ai-edge-litert
#: 2.3, the litert-* semantics), each with its reference, optimized and default (XNNPACK) resolvers.
RESOLVERS = {
    "tflite-reference": ("tensorflow", "BUILTIN_REF"),
    "tflite-optimized": ("tensorflow", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"),
    "xnnpack": ("tensorflow", "AUTO"),
    "litert-reference": ("litert", "BUILTIN_REF"),
    "litert-optimized": ("litert", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"),
    "litert-xnnpack": ("litert", "AUTO"),
}
#: TFLite Micro's interpreter (the tflite-micro package), run with every tensor preserved
MICRO = "tflite-micro"


def family(resolver: str) -> str:
    """The interpreter a run needs: tensorflow, litert or tflite-micro (one serving process each)."""
    return MICRO if resolver == MICRO else RESOLVERS[resolver][0]


def _interpreter_class(interpreter: str):
    """TensorFlow's ``tf.lite.Interpreter`` or LiteRT's, with its op-resolver enum."""
    if interpreter == "tensorflow":
        import tensorflow as tf

        return tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter, OpResolverType


def run(resolver: str, model_path: str, inputs_path: str, out_path: str) -> None:
    """Invoke the interpreter once per sample and save each tensor's values stacked over samples."""
    import numpy as np

    which, resolver_type = RESOLVERS[resolver]
    interpreter_cls, resolver_types = _interpreter_class(which)
    interpreter = interpreter_cls(
        model_path=model_path,
        experimental_op_resolver_type=getattr(resolver_types, resolver_type),
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    with np.load(inputs_path) as npz:
        samples = dict(npz)
    details = interpreter.get_input_details()
    count = samples["input_0"].shape[0]
    per_tensor: dict[int, list] = {}
    for s in range(count):
        for i, d in enumerate(details):
            interpreter.set_tensor(d["index"], samples[f"input_{i}"][s])
        interpreter.invoke()
        for t in interpreter.get_tensor_details():
            try:
                value = interpreter.get_tensor(t["index"])
            except ValueError:  # delegate-owned or freed: not observable
                continue
            per_tensor.setdefault(t["index"], []).append(np.array(value))
    np.savez(out_path, **{f"t{index}": np.stack(v) for index, v in per_tensor.items() if len(v) == count})


def run_micro(model_path: str, inputs_path: str, out_path: str) -> None:
    """The same for TFLite Micro's interpreter: every tensor of subgraph 0 read back after each invoke."""
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    with open(model_path, "rb") as f:
        content = f.read()
    tensors = len(runtime.convert_bytearray_to_object(bytearray(content)).subgraphs[0].tensors)
    keep_all = runtime.InterpreterConfig.kPreserveAllTensors
    interpreter = runtime.Interpreter.from_bytes(content, arena_size=64 << 20, intrepreter_config=keep_all)
    with np.load(inputs_path) as npz:
        samples = dict(npz)
    count = samples["input_0"].shape[0]
    per_tensor: dict[int, list] = {}
    for s in range(count):
        for i in range(len(samples)):
            interpreter.set_input(samples[f"input_{i}"][s], i)
        interpreter.invoke()
        for index in range(tensors):
            per_tensor.setdefault(index, []).append(np.array(interpreter.GetTensor(index, 0)["tensor_data"]))
    np.savez(out_path, **{f"t{index}": np.stack(v) for index, v in per_tensor.items()})


def serve() -> None:
    """Run jobs from stdin until it closes. Replies go to a private copy of stdout, and file descriptor 1
    to /dev/null, so whatever an interpreter prints there cannot be taken for a reply (nor was it read when
    each call had a process of its own)."""
    replies = os.fdopen(os.dup(1), "w")
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.close(quiet)
    while line := sys.stdin.readline():
        job = json.loads(line)
        folder = job["folder"]
        for resolver in job["resolvers"]:
            out = os.path.join(folder, f"{resolver}.npz")
            if resolver == MICRO:
                run_micro(job["model"], job["inputs"], out)
            else:
                run(resolver, job["model"], job["inputs"], out)
        replies.write("done\n")
        replies.flush()


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses in the tests
    serve()
