"""Frozen TensorFlow graphs to ONNX, without TensorFlow: parse the GraphDef with protobuf, rebuild it node by node.

Only the small op set of a frozen inference CNN is supported (FaceNet's Inception-ResNet-v1 uses exactly
these). TensorFlow keeps images NHWC; ONNX convolutions want NCHW, so the graph input is transposed once and
every 4-d tensor is kept NCHW inside, with axes of Concat/Reshape mapped accordingly. Anything outside the op
set raises, naming the op, rather than converting wrongly.
"""

from __future__ import annotations

from graphlib import TopologicalSorter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: TensorFlow DataType enum values we meet in frozen CNNs
_DTYPES = {1: np.float32, 3: np.int32, 9: np.int64}
#: NHWC axis -> NCHW axis
_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}


def parse_graph_def(data: bytes):
    """The GraphDef message in ``data`` (protobuf classes from the ``tensorboard`` wheel; no TensorFlow)."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(data)
    return graph


def tensor_to_array(tensor) -> np.ndarray:
    """A TensorProto's value as a numpy array (packed bytes, or repeated values broadcast to the shape)."""
    dtype = _DTYPES.get(tensor.dtype)
    if dtype is None:
        raise ValueError(f"Unsupported constant dtype {tensor.dtype}")
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape).copy()
    values = np.asarray(tensor.float_val if dtype == np.float32 else (tensor.int_val or tensor.int64_val), dtype)
    count = int(np.prod(shape)) if shape else 1
    return np.full(shape, values[0], dtype) if values.size == 1 and count != 1 else values.reshape(shape)


def _name(reference: str) -> str:
    """``node:0`` and ``node`` name the same tensor; ``^node`` is a control dependency."""
    return reference.lstrip("^").split(":")[0]


def graph_def_to_onnx(data: bytes, input_name: str, output_name: str, *, opset: int = 17) -> onnx.ModelProto:
    """Convert the frozen graph in ``data`` to an ONNX model with a dynamic batch (NHWC float input)."""
    graph = parse_graph_def(data)
    constants: dict[str, np.ndarray] = {}
    nchw: set[str] = set()  # tensors that are 4-d and stored NCHW in the ONNX graph
    nodes: list[onnx.NodeProto] = []
    initializers: dict[str, np.ndarray] = {}

    def const(name: str, value: np.ndarray) -> str:
        initializers[name] = np.asarray(value)
        return name

    def emit(op: str, inputs: list[str], output: str, **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))

    def channel_vector(value: np.ndarray, like: str, name: str) -> str:
        """A per-channel constant shaped to broadcast over ``like`` (NCHW: (1, C, 1, 1))."""
        return const(name, value.reshape(1, -1, 1, 1) if like in nchw else value)

    for node in _topological(graph.node):
        out = node.name
        inputs = [_name(i) for i in node.input if not i.startswith("^")]
        attr = node.attr
        op = node.op
        if op == "Const":
            constants[out] = tensor_to_array(attr["value"].tensor)
        elif op == "Placeholder":
            if out != input_name:
                raise ValueError(f"Unexpected extra graph input {out!r}")
            emit("Transpose", ["input_nhwc"], out, perm=[0, 3, 1, 2])
            nchw.add(out)
        elif op == "Conv2D":
            weights = constants[inputs[1]].transpose(3, 2, 0, 1)  # HWIO -> OIHW
            strides = list(attr["strides"].list.i)[1:3]
            dilations = list(attr["dilations"].list.i)[1:3] or [1, 1]
            emit("Conv", [inputs[0], const(out + "/W", weights)], out, strides=strides, dilations=dilations,
                 kernel_shape=list(weights.shape[2:]), auto_pad=_pad(attr))
            nchw.add(out)
        elif op in ("MaxPool", "AvgPool"):
            kernel = list(attr["ksize"].list.i)[1:3]
            strides = list(attr["strides"].list.i)[1:3]
            extra = {"count_include_pad": 0} if op == "AvgPool" else {}
            emit("MaxPool" if op == "MaxPool" else "AveragePool", [inputs[0]], out, kernel_shape=kernel,
                 strides=strides, auto_pad=_pad(attr), **extra)
            nchw.add(out)
        elif op == "BiasAdd":
            emit("Add", [inputs[0], channel_vector(constants[inputs[1]], inputs[0], out + "/b")], out)
            if inputs[0] in nchw:
                nchw.add(out)
        elif op == "FusedBatchNorm":
            scale, offset, mean, variance = (constants[i] for i in inputs[1:5])
            factor = scale / np.sqrt(variance + attr["epsilon"].f)
            emit("Mul", [inputs[0], channel_vector(factor, inputs[0], out + "/scale")], out + "/scaled")
            emit("Add", [out + "/scaled", channel_vector(offset - mean * factor, inputs[0], out + "/shift")], out)
            if inputs[0] in nchw:
                nchw.add(out)
        elif op in ("Relu", "Rsqrt", "Square"):
            if op == "Relu":
                emit("Relu", inputs, out)
            elif op == "Square":
                emit("Mul", [inputs[0], inputs[0]], out)
            else:
                emit("Sqrt", inputs, out + "/sqrt")
                emit("Reciprocal", [out + "/sqrt"], out)
            if inputs[0] in nchw:
                nchw.add(out)
        elif op in ("Add", "Mul", "Maximum"):
            operands = [const(out + f"/c{k}", constants[i].astype(np.float32)) if i in constants else i
                        for k, i in enumerate(inputs)]
            emit({"Add": "Add", "Mul": "Mul", "Maximum": "Max"}[op], operands, out)
            if any(i in nchw for i in inputs):
                if any(i in constants and constants[i].ndim > 0 for i in inputs):
                    raise ValueError(f"{out}: a non-scalar constant against an NCHW tensor is not supported")
                nchw.add(out)
        elif op == "ConcatV2":
            axis = int(constants[inputs[-1]])
            tensors = inputs[:-1]
            if all(t in nchw for t in tensors):
                axis = _NCHW_AXIS[axis]
                nchw.add(out)
            emit("Concat", tensors, out, axis=axis)
        elif op == "Reshape":
            source = inputs[0]
            if source in nchw:  # back to TensorFlow's element order before reshaping
                emit("Transpose", [source], out + "/nhwc", perm=[0, 2, 3, 1])
                source = out + "/nhwc"
            shape = constants[inputs[1]].astype(np.int64).copy()
            shape[0] = 0  # frozen graphs fix the batch at 1: keep the input's batch (ONNX 0 = copy that dim)
            emit("Reshape", [source, const(out + "/shape", shape)], out)
        elif op == "MatMul":
            if attr["transpose_a"].b or attr["transpose_b"].b:
                raise ValueError(f"{out}: transposed MatMul is not supported")
            emit("MatMul", [inputs[0], const(out + "/W", constants[inputs[1]])], out)
        elif op == "Sum":
            if inputs[0] in nchw:
                raise ValueError(f"{out}: Sum over an NCHW tensor is not supported")
            axes = np.atleast_1d(constants[inputs[1]]).astype(np.int64)
            emit("ReduceSum", [inputs[0], const(out + "/axes", axes)], out, keepdims=int(attr["keep_dims"].b))
        elif op == "Identity":
            emit("Identity", inputs, out)
            if inputs[0] in nchw:
                nchw.add(out)
        else:
            raise ValueError(f"TensorFlow op {op!r} (node {out!r}) is not supported by this converter")

    if output_name in nchw:
        raise ValueError("A 4-d graph output is not supported")
    placeholder = next(n for n in graph.node if n.name == input_name)
    dims = [d.size for d in placeholder.attr["shape"].shape.dim]
    model_graph = helper.make_graph(
        nodes,
        "converted",
        [helper.make_tensor_value_info("input_nhwc", TensorProto.FLOAT, ["batch", *dims[1:]])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", "features"])],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    model = helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def _topological(nodes) -> list:
    """GraphDefs need not list nodes in dependency order; ONNX does."""
    by_name = {node.name: node for node in nodes}
    order = TopologicalSorter({node.name: {_name(i) for i in node.input} for node in nodes}).static_order()
    return [by_name[name] for name in order]


def _pad(attr) -> str:
    padding = attr["padding"].s.decode()
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"Unsupported padding {padding!r}")
    return "SAME_UPPER" if padding == "SAME" else "VALID"
