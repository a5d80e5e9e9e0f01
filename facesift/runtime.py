"""onnxruntime settings shared by every backend."""

from __future__ import annotations

import os

import onnxruntime as ort


def session_options() -> ort.SessionOptions:
    """Use the cores we have (``FACESIFT_THREADS`` overrides), and keep onnxruntime quiet."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("FACESIFT_THREADS", "0")) or min(os.cpu_count() or 1, 4)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def open_session(model) -> tuple[ort.InferenceSession, str]:
    """A CPU session for an ONNX file (a path, or the model's bytes) and the name of its (single) input."""
    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(source, session_options(), providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name
