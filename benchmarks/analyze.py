"""Milliseconds per face: plain embedding (align + SFace) beside the same faces analysed (age, gender, emotion,
liveness) as ``analyze`` does it (one SFace pass gives the embedding and two intermediate maps, then the texture
and the heads: the fine-tuned age-gender and emotion networks, the liveness classifier),
in one run, so the heads' cost is a difference and a ratio measured on the same machine state.

    python benchmarks/analyze.py [--faces 32] [--repeat 3]

Faces are real (celeba300 photos, YuNet), detected once outside the timing; both loops start from the same
photos and detected faces, so detection is left out of both. The per-head rows time each head alone, with the
inputs it needs (the embedding given): the map heads share one SFace pass (age and gender one network too), so
the rows do not add up to the total.
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np

from facesift.analysis.analyzer import DEFAULT_ACTIONS, analyze_faces
from facesift.analysis.heads import load_heads
from facesift.image import load_image
from facesift.pipeline import get_pipeline

from pipeline import celeba_photos, timed  # benchmarks/pipeline.py: sample photos; median of repeated calls after a warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = celeba_photos(args.faces)
    pipeline = get_pipeline()
    found = [(image, faces[0]) for image in map(load_image, files) if (faces := pipeline.detector.detect(image))]
    embedder = pipeline.embedder

    def embed() -> np.ndarray:
        return embedder.embed([embedder.align(image, face) for image, face in found])

    def analyse() -> dict:
        return analyze_faces([embedder.align(image, face) for image, face in found], None, DEFAULT_ACTIONS)

    vectors = embed()
    crops = [embedder.align(image, face) for image, face in found]
    plain = timed(embed, args.repeat) / len(found)
    full = timed(analyse, args.repeat) / len(found)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {len(found)} celeba300 faces, median of {args.repeat}")
    print(f"{'step':<34}{'ms per face':>12}{'x embedding':>13}")
    print(f"{'align + SFace embedding':<34}{1000 * plain:>12.2f}{1.0:>13.2f}")
    print(f"{'align + SFace pass + 4 heads':<34}{1000 * full:>12.2f}{full / plain:>13.2f}")
    for action, head in load_heads().items():
        if action in DEFAULT_ACTIONS:
            alone = timed(lambda a=action: analyze_faces(crops, vectors, (a,)), args.repeat) / len(found)
            print(f"{'  ' + action + ' head (' + head.card.input + ')':<34}{1000 * alone:>12.2f}{alone / plain:>13.2f}")


if __name__ == "__main__":
    main()
