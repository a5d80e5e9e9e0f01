"""What packing a trained model costs: file size, ms per face and agreement with the fp32 file, per precision.

    python benchmarks/shipped_models.py [NAME ...]

NAME: models trained here (``<cache>/trained/NAME.onnx``); without one, SFace's own fp32 file stands in (the
cross-resolution models are SFace fine-tuned: same layers, same weight shapes). Agreement is the cosine between
the fp32 and the packed file's vectors on real crops of held-out people (celeba300 folds 6-10), full size and
shrunk to 14 px. "as stored" runs the packed file directly; "unpacked" is what the pipeline runs (fp32 again, PReLU
rewritten so onnxruntime fuses it; the fp32 row is the file as training wrote it).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from facesift import get_pipeline, models
from facesift.image import load_image
from facesift.onnx_repair import store_weights
from facesift.recognition.trained import trained_dir, unpack_shipped

FACES = Path(os.environ.get("FACESIFT_FACES_DIR", "../shared/faces"))


def session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def embed(run: ort.InferenceSession, crops: np.ndarray) -> np.ndarray:
    out = run.run(None, {run.get_inputs()[0].name: crops})[0]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def ms_per_face(run: ort.InferenceSession, crops: np.ndarray, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        embed(run, crops)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(crops)


def real_crops(count: int = 24) -> np.ndarray:
    pipeline = get_pipeline(low_resolution=False)
    people = sorted(p for p in (FACES / "celeba300").iterdir() if p.is_dir())[-count:]  # the last people: folds 6-10's side
    crops = []
    for person in people:
        pixels = load_image(sorted(person.iterdir())[0])
        found = pipeline.detect(pixels)
        if found:
            crops.append(pipeline.embedder.align(pixels, found[0].face))
    small = [cv2.resize(cv2.resize(c, (14, 14), interpolation=cv2.INTER_AREA), (112, 112), interpolation=cv2.INTER_CUBIC) for c in crops]
    return np.ascontiguousarray(np.stack(crops + small).transpose(0, 3, 1, 2), dtype=np.float32)


def main(names: list[str]) -> None:
    files = {name: trained_dir() / f"{name}.onnx" for name in names} or {"sface (stand-in)": models.model_path("sface")}
    crops = real_crops()
    print(f"{len(crops)} crops (half at 14 px); onnxruntime {ort.__version__}, 2 threads")
    print("| model | weights | MB | ms/face as stored | ms/face unpacked | cosine to fp32: mean | min |")
    print("|---|---|---|---|---|---|---|")
    for name, path in files.items():
        data = path.read_bytes()
        fp32 = session(data)
        reference = embed(fp32, crops)
        print(f"| {name} | fp32 | {len(data) / 1e6:.1f} | {ms_per_face(fp32, crops):.1f} | - | 1 | 1 |")
        for precision in ("fp16", "int8"):
            packed = store_weights(onnx.load_from_string(data), precision).SerializeToString()
            stored, unpacked = session(packed), session(unpack_shipped(packed))
            cosine = (embed(unpacked, crops) * reference).sum(axis=1)
            print(f"| {name} | {precision} | {len(packed) / 1e6:.1f} | {ms_per_face(stored, crops):.1f} | "
                  f"{ms_per_face(unpacked, crops):.1f} | {cosine.mean():.5f} | {cosine.min():.5f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
