"""SFace as a PyTorch module, rebuilt from facesift's repaired ONNX graph, and exported back to ONNX.

``onnx2torch`` refuses the graph (see MODELS.md), but it is a plain chain of a few op types, so we walk it
and build the same layers with the same weights: the input scaling, Conv, BatchNorm, PReLU (which our
repair wrote as ``(1 - a) * Relu(x) + a * x``; a plain PRelu node is read too), Dropout, Flatten, Gemm.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from facesift.errors import ModelError


class InputScale(nn.Module):
    """``(x - mean) * scale``: SFace takes 0-255 pixels and scales them itself."""

    def __init__(self, mean: float, scale: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.scale


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(values, dtype=np.float32))


def sface_from_onnx(path: str | Path | None = None) -> nn.Sequential:
    """The SFace network as an ``nn.Sequential`` in eval mode, with the weights of ``path``.

    ``path`` defaults to facesift's repaired fp32 SFace (``model_path("sface")``); a file exported by
    :func:`export_onnx` reads back too. Input: (N, 3, 112, 112) float RGB 0-255; output: (N, 128), not normalised.
    """
    if path is None:
        import facesift.recognition  # noqa: F401  (registers the SFace weight file)
        from facesift.models import model_path

        path = model_path("sface")
    graph = onnx.load(str(path)).graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(_attributes(node)["value"])
    nodes = [node for node in graph.node if node.op_type != "Constant"]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    current = graph.input[0].name
    i = 0
    while i < len(nodes):
        node = nodes[i]
        data = [name for name in node.input if name and name not in constants]
        if data != [current]:
            raise ModelError(f"{path}: node {node.name or node.output[0]} is not part of a simple chain; cannot rebuild it")
        weights = [constants[name] for name in node.input[1:] if name in constants]
        name = node.output[0].replace(".", "_").replace("/", "_")
        op = node.op_type
        if op == "Sub" and i + 1 < len(nodes) and nodes[i + 1].op_type == "Mul":
            layers[name] = InputScale(float(weights[0].reshape(-1)[0]), float(constants[nodes[i + 1].input[1]].reshape(-1)[0]))
            i += 1
        elif op == "Conv":
            layers[name] = _conv(weights, _attributes(node))
        elif op == "BatchNormalization":
            layers[name] = _batchnorm(weights, _attributes(node), after_linear=isinstance(next(reversed(layers.values()), None), nn.Linear))
        elif op == "Relu" and i + 3 < len(nodes) and [n.op_type for n in nodes[i + 1 : i + 4]] == ["Mul", "Mul", "Add"]:
            output = nodes[i + 3].output[0]
            layers[output] = _prelu(constants[f"{output}__slope"])
            name, i = output, i + 3
        elif op == "PRelu":
            layers[name] = _prelu(weights[0])
        elif op == "Dropout":
            layers[name] = nn.Dropout(float(weights[0]) if weights else 0.5)
        elif op == "Flatten":
            layers[name] = nn.Flatten()
        elif op == "Gemm":
            layers[name] = _linear(weights, _attributes(node))
        else:
            raise ModelError(f"{path}: unsupported ONNX op {op!r}; cannot rebuild it in PyTorch")
        current = nodes[i].output[0]
        i += 1
    return nn.Sequential(layers).eval()


def _conv(weights: list[np.ndarray], attrs: dict) -> nn.Conv2d:
    kernel = weights[0]
    groups = int(attrs.get("group", 1))
    pads = attrs.get("pads", [0, 0, 0, 0])
    if pads[:2] != pads[2:]:
        raise ModelError(f"asymmetric padding {pads} is not supported")
    conv = nn.Conv2d(
        kernel.shape[1] * groups,
        kernel.shape[0],
        tuple(kernel.shape[2:]),
        stride=tuple(attrs.get("strides", [1, 1])),
        padding=tuple(pads[:2]),
        dilation=tuple(attrs.get("dilations", [1, 1])),
        groups=groups,
        bias=len(weights) > 1,
    )
    conv.weight.data = _tensor(kernel)
    if len(weights) > 1:
        conv.bias.data = _tensor(weights[1])
    return conv


def _batchnorm(weights: list[np.ndarray], attrs: dict, *, after_linear: bool) -> nn.Module:
    scale, bias, mean, var = weights
    kind = nn.BatchNorm1d if after_linear else nn.BatchNorm2d
    norm = kind(len(scale), eps=float(attrs.get("epsilon", 1e-5)), momentum=1.0 - float(attrs.get("momentum", 0.9)))
    norm.weight.data, norm.bias.data = _tensor(scale), _tensor(bias)
    norm.running_mean.data, norm.running_var.data = _tensor(mean), _tensor(var)
    return norm


def _prelu(slope: np.ndarray) -> nn.PReLU:
    flat = np.asarray(slope, dtype=np.float32).reshape(-1)
    prelu = nn.PReLU(len(flat))
    prelu.weight.data = _tensor(flat)
    return prelu


def _linear(weights: list[np.ndarray], attrs: dict) -> nn.Linear:
    matrix = weights[0] if attrs.get("transB", 0) else weights[0].T
    linear = nn.Linear(matrix.shape[1], matrix.shape[0], bias=len(weights) > 1)
    linear.weight.data = _tensor(matrix * float(attrs.get("alpha", 1.0)))
    if len(weights) > 1:
        linear.bias.data = _tensor(weights[1] * float(attrs.get("beta", 1.0)))
    return linear


def export_onnx(model: nn.Module, path: str | Path, input_size: int = 112) -> Path:
    """Write ``model`` as an ONNX file that facesift's embedders run (input ``data``, batch dimension free)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    dummy = torch.zeros(1, 3, input_size, input_size)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: no onnxscript needed
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=["data"],
            output_names=["embedding"],
            dynamic_axes={"data": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    onnx.checker.check_model(str(tmp))
    tmp.replace(path)
    model.train(was_training)
    return path
