"""The FaceNet graph converted without TensorFlow gives what a plain numpy run of the same GraphDef gives.

The reference below interprets the frozen graph node by node in TensorFlow's own NHWC layout with numpy, an
implementation independent of the converter's NCHW rewriting; both read the same GraphDef.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import facesift
from facesift.models import locate_source, model_path
from facesift.recognition.facenet import FACENET
from facesift.tf_graph import graph_def_to_onnx, parse_graph_def, tensor_to_array


def _same_pad(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], padding: bytes, value=0.0):
    if padding == b"VALID":
        return x
    pads = []
    for size, k, s in zip(x.shape[1:3], kernel, strides, strict=True):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=value)


def _windows(x: np.ndarray, kernel, strides) -> np.ndarray:
    """(N, Ho, Wo, C, kh, kw) views."""
    return sliding_window_view(x, kernel, axis=(1, 2))[:, :: strides[0], :: strides[1]]


def run_reference(data: bytes, image: np.ndarray) -> np.ndarray:
    """Evaluate the frozen graph in numpy, NHWC, float64."""
    values: dict[str, np.ndarray] = {}
    nodes = {node.name: node for node in parse_graph_def(data).node}

    def value(name: str) -> np.ndarray:
        name = name.split(":")[0]
        if name not in values:
            node = nodes[name]
            args = [value(i) for i in node.input if not i.startswith("^")]
            values[name] = evaluate(node, args)
        return values[name]

    def evaluate(node, args):
        op, attr = node.op, node.attr
        if op == "Const":
            return tensor_to_array(attr["value"].tensor).astype(np.float64)
        if op == "Placeholder":
            return image.astype(np.float64)
        if op == "Conv2D":
            w = args[1]
            strides = tuple(attr["strides"].list.i[1:3])
            x = _same_pad(args[0], w.shape[:2], strides, attr["padding"].s)
            return np.einsum("nhwcij,ijco->nhwo", _windows(x, w.shape[:2], strides), w, optimize=True)
        if op in ("MaxPool", "AvgPool"):
            kernel, strides = tuple(attr["ksize"].list.i[1:3]), tuple(attr["strides"].list.i[1:3])
            assert attr["padding"].s == b"VALID"
            windows = _windows(args[0], kernel, strides)
            return windows.max(axis=(4, 5)) if op == "MaxPool" else windows.mean(axis=(4, 5))
        if op == "FusedBatchNorm":
            x, scale, offset, mean, var = args
            return (x - mean) / np.sqrt(var + attr["epsilon"].f) * scale + offset
        if op == "ConcatV2":
            return np.concatenate(args[:-1], axis=int(args[-1]))
        if op == "Reshape":
            return args[0].reshape([int(d) if i else len(args[0]) for i, d in enumerate(args[1])])
        if op == "Sum":
            return args[0].sum(axis=int(args[1]), keepdims=attr["keep_dims"].b)
        simple = {
            "BiasAdd": lambda a, b: a + b, "Add": np.add, "Mul": np.multiply, "Maximum": np.maximum,
            "MatMul": np.matmul, "Relu": lambda a: np.maximum(a, 0), "Square": np.square,
            "Rsqrt": lambda a: 1 / np.sqrt(a),
        }
        return simple[op](*args)

    return value("embeddings")


@pytest.fixture(scope="module")
def graph_bytes() -> bytes:
    return locate_source(FACENET).read_bytes()


@pytest.fixture(scope="module")
def crops(obama, biden) -> np.ndarray:
    pipeline = facesift.get_pipeline(embedder="facenet")
    return np.stack([pipeline._analyse(path, "largest").crops[0] for path in (obama, biden)])


def test_converted_graph_matches_numpy_reference_on_real_faces(graph_bytes, crops):
    session = ort.InferenceSession(str(model_path("facenet")), providers=["CPUExecutionProvider"])
    blob = (crops.astype(np.float32) - 127.5) / 128.0
    converted = session.run(None, {"input_nhwc": blob})[0]
    reference = np.concatenate([run_reference(graph_bytes, blob[i : i + 1]) for i in range(len(blob))])
    assert converted.shape == (2, 512)
    assert np.abs(converted - reference).max() < 1e-4  # float32 against float64 on unit vectors
    assert float(converted[0] @ converted[1]) < 0.5  # two different people stay apart


def test_batch_is_open_and_rows_are_independent(crops):
    session = ort.InferenceSession(str(model_path("facenet")), providers=["CPUExecutionProvider"])
    blob = (crops.astype(np.float32) - 127.5) / 128.0
    both = session.run(None, {"input_nhwc": blob})[0]
    alone = session.run(None, {"input_nhwc": blob[1:]})[0]
    assert np.abs(both[1] - alone[0]).max() < 1e-5


def test_conversion_needs_no_tensorflow(graph_bytes):
    model = graph_def_to_onnx(graph_bytes, "input", "embeddings")
    onnx.checker.check_model(model)
    assert {n.op_type for n in model.graph.node} <= {
        "Transpose", "Conv", "Add", "Relu", "Mul", "Concat", "MaxPool", "AveragePool", "Reshape", "MatMul",
        "ReduceSum", "Max", "Sqrt", "Reciprocal",
    }
    assert "tensorflow" not in sys.modules


def test_unsupported_ops_are_named(graph_bytes):
    graph = parse_graph_def(graph_bytes)
    relu = next(n for n in graph.node if n.op == "Relu")
    relu.op = "Selu"
    with pytest.raises(ValueError, match="Selu"):
        graph_def_to_onnx(graph.SerializeToString(), "input", "embeddings")
