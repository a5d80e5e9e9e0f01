"""Graph surgery that makes packaged ONNX files run well in onnxruntime.

Some packaged files list their weights as graph inputs (onnxruntime then refuses or slows them) and keep
weights int8 with a DequantizeLinear per layer (each inference dequantises again). Folding those constants
to fp32 gives identical embeddings in about half the time (see MODELS.md).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Evaluate every node whose inputs are all constants and store its outputs as initializers."""
    graph = model.graph
    constants: dict[str, np.ndarray] = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept_nodes = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if all(name in constants for name in inputs):
            outputs = _run_node(node, {name: constants[name] for name in inputs}, model.opset_import)
            constants.update(zip(node.output, outputs, strict=True))
        else:
            kept_nodes.append(node)
    used = {name for node in kept_nodes for name in node.input} | {out.name for out in graph.output}
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(
        numpy_helper.from_array(np.asarray(value), name) for name, value in constants.items() if name in used
    )
    return model


def drop_stray_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove graph inputs that are initializers, node outputs or unused: only real inputs remain."""
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    produced = {out for node in graph.node for out in node.output}
    consumed = {name for node in graph.node for name in node.input}
    real = [inp for inp in graph.input if inp.name not in initializers | produced and inp.name in consumed]
    del graph.input[:]
    graph.input.extend(real)
    return model


def make_batch_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Let the first dimension of every input and output vary, so many faces go through in one call."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    del model.graph.value_info[:]  # stale fixed shapes would contradict the dynamic batch
    return model


def _per_axis_dequantize(node: onnx.NodeProto, feeds: dict[str, np.ndarray]) -> np.ndarray | None:
    """DequantizeLinear by its definition, ``(x - zero_point) * scale``, for a scalar or per-axis scale (what
    :func:`store_weights` writes; ``None`` for anything else, block quantisation say). onnx's reference
    evaluator has no implementation of the opset 13-18 versions (onnx 1.23), which models exported at opset 17
    carry."""
    values, scale = feeds[node.input[0]], feeds[node.input[1]]
    zero = feeds[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros_like(scale, dtype=values.dtype)
    attributes = {a.name: a.i for a in node.attribute}
    if attributes.get("block_size") or scale.ndim > 1:
        return None
    if scale.ndim == 1:
        axis = attributes.get("axis", 1) % values.ndim
        if scale.size != values.shape[axis]:
            return None
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((values.astype(np.int32) - zero.astype(np.int32)) * scale).astype(np.float32)


def _run_node(node: onnx.NodeProto, feeds: dict[str, np.ndarray], opsets) -> list[np.ndarray]:
    if node.op_type == "DequantizeLinear" and node.domain in ("", "ai.onnx"):
        folded = _per_axis_dequantize(node, feeds)
        if folded is not None:
            return [folded]
    graph = onnx.helper.make_graph(
        [node],
        "fold",
        [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in feeds],
        [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in node.output],
    )
    single = onnx.helper.make_model(graph, opset_imports=list(opsets))
    return ReferenceEvaluator(single).run(None, feeds)


def decompose_prelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite each PRelu with constant slopes ``a`` as ``(1 - a) * Relu(x) + a * x``.

    Same function (differences ~1e-6), but onnxruntime fuses the Relu into the convolution before it and
    keeps its blocked memory layout; its PRelu kernel breaks both and was 60 % of SFace's run time.
    """
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes, added = [], []
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in constants:
            nodes.append(node)
            continue
        x, slope_name = node.input
        (y,) = node.output
        slope = constants[slope_name].astype(np.float32)
        if slope.ndim == 3:  # (C, 1, 1) broadcast over NCHW
            slope = slope[None]
        added += [
            numpy_helper.from_array((1.0 - slope).astype(np.float32), f"{y}__keep"),
            numpy_helper.from_array(slope, f"{y}__slope"),
        ]
        nodes += [
            onnx.helper.make_node("Relu", [x], [f"{y}__relu"]),
            onnx.helper.make_node("Mul", [f"{y}__relu", f"{y}__keep"], [f"{y}__positive"]),
            onnx.helper.make_node("Mul", [x, f"{y}__slope"], [f"{y}__linear"]),
            onnx.helper.make_node("Add", [f"{y}__positive", f"{y}__linear"], [y]),
        ]
    used = {name for node in nodes for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    return model


def store_weights(model: onnx.ModelProto, precision: str, min_size: int = 1024) -> onnx.ModelProto:
    """Keep each float32 weight of at least ``min_size`` values in fp16 or int8, behind the node that turns it back
    into fp32 (Cast; DequantizeLinear with one symmetric scale per output channel): the same graph in a half or
    a quarter of the bytes. :func:`fold_constants` restores plain fp32 weights when the file is first used."""
    if precision not in ("fp16", "int8"):
        raise ValueError(f"precision must be 'fp16' or 'int8', not {precision!r}")
    graph = model.graph
    kept, restore = [], []
    for init in graph.initializer:
        weights = numpy_helper.to_array(init)
        if weights.dtype != np.float32 or weights.size < min_size:
            kept.append(init)
            continue
        stored = f"{init.name}__{precision}"
        if precision == "fp16":
            kept.append(numpy_helper.from_array(weights.astype(np.float16), stored))
            restore.append(onnx.helper.make_node("Cast", [stored], [init.name], to=onnx.TensorProto.FLOAT))
            continue
        channels = weights.reshape(weights.shape[0], -1)
        scale = np.maximum(np.abs(channels).max(axis=1), 1e-12).astype(np.float32) / 127.0
        shape = (-1,) + (1,) * (weights.ndim - 1)
        quantised = np.clip(np.round(weights / scale.reshape(shape)), -127, 127).astype(np.int8)
        kept += [numpy_helper.from_array(quantised, stored), numpy_helper.from_array(scale, f"{stored}_scale"),
                 numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{stored}_zero")]
        restore.append(onnx.helper.make_node("DequantizeLinear", [stored, f"{stored}_scale", f"{stored}_zero"], [init.name], axis=0))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = restore + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model
