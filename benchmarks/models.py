"""Milliseconds per face for every embedder and the fusion presets, in one run, against SFace (``fast``).

    python benchmarks/models.py [--faces 32] [--repeat 3]

Crops are real faces (celeba300, YuNet), aligned once per model outside the timing; each model embeds the
same faces in its batches. ``accurate`` runs its members in parallel threads; the sequential sum of its
members is printed beside it, so the gain from parallelism is a ratio measured in the same run. Detection
and the first-use FaceNet conversion are reported separately.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from facesift.detection import create_detector
from facesift.image import load_image
from facesift.models import locate_source
from facesift.recognition import create_embedder
from facesift.recognition.facenet import FACENET
from facesift.tf_graph import graph_def_to_onnx

from pipeline import timed  # benchmarks/pipeline.py: median of repeated calls after a warm-up

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))
MODELS = [("sface", "sface", {}), ("facenet", "facenet", {}), ("dlib (no flip)", "dlib", {"flip": False}),
          ("dlib (flip)", "dlib", {}), ("accurate", "accurate", {})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted(f for person in sorted((FACES / "celeba300").iterdir()) for f in sorted(person.iterdir()))
    files = files[:: max(1, len(files) // args.faces)][: args.faces]
    detector = create_detector("yunet")
    images = [load_image(f) for f in files]
    detect = timed(lambda: [detector.detect(i) for i in images], args.repeat) / len(images)
    found = [(image, faces[0]) for image in images if (faces := detector.detect(image))]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {len(found)} celeba300 faces, "
          f"median of {args.repeat}; YuNet detection {1000 * detect:.1f} ms per 250x250 photo")
    print(f"{'model':<18}{'dims':>6}{'ms per face':>13}{'x sface':>9}")
    results = {}
    for label, name, options in MODELS:
        embedder = create_embedder(name, **options)
        crops = [embedder.align(image, face) for image, face in found]
        seconds = timed(lambda: embedder.embed(crops), args.repeat) / len(crops)
        results[label] = seconds
        print(f"{label:<18}{embedder.dims:>6}{1000 * seconds:>13.1f}{seconds / results['sface']:>9.2f}")
        if name == "accurate":
            sequential = 0.0
            for member in embedder.members:
                parts = [member.align(image, face) for image, face in found]
                sequential += timed(lambda: member.embed(parts), args.repeat) / len(parts)
            print(f"{'  members in turn':<18}{'':>6}{1000 * sequential:>13.1f}{sequential / results['sface']:>9.2f}"
                  f"   (parallel is {sequential / seconds:.2f}x faster)")
    source = locate_source(FACENET).read_bytes()
    start = time.perf_counter()
    graph_def_to_onnx(source, "input", "embeddings").SerializeToString()
    print(f"FaceNet first-use conversion (frozen TF graph -> ONNX, no TensorFlow): {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
