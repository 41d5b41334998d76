"""ONNX Runtime as a long-lived worker process, started under ``qemu-x86_64 -cpu EPYC-v1`` by the tests.

Emulation makes starting Python and importing onnxruntime take 10-20 s, so one worker serves every emulated
case of a test session. Requests and replies are pickles on stdin / stdout: a request is
``(model bytes, feeds, levels)`` (``levels``: "default" and/or "disable_all" graph optimizations), the reply
``("ok", [first output per level])`` or ``("error", traceback)``; ``None`` ends the worker. It imports only
numpy and onnxruntime, so it runs with any interpreter that has them.
"""

import pickle
import sys
import traceback

import onnxruntime as ort


def run(model: bytes, feeds: dict, levels: list[str]) -> list:
    """The first output of ``model`` on ``feeds`` under each graph optimization level."""
    outs = []
    for level in levels:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if level == "disable_all":
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        outs.append(session.run(None, feeds)[0])
    return outs


def main() -> None:
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while (request := pickle.load(requests)) is not None:
        try:
            reply = ("ok", run(*request))
        except Exception:  # the test process reports it
            reply = ("error", traceback.format_exc())
        pickle.dump(reply, replies)
        replies.flush()


if __name__ == "__main__":
    main()
