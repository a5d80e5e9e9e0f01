"""The same held-out faces shrunk to 28, 14 and 7 px and brought back by each restorer, side by side.

    python scripts/restoration_figure.py [--faces 4] [--out docs/img/restoration.png]

Faces: the second photo of the first same-person pairs of celeba300 folds 6-10 (people no restorer was
trained on). Under each tile: SFace's cosine between that tile and the original crop, the number that
decides recognition. Restorers that are not installed (Real-ESRGAN, or facesr before `facesift train
superres`) are left out and named on the console.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from facesift.errors import ModelNotInstalledError  # noqa: E402
from facesift.evaluation import read_lfw_pairs  # noqa: E402
from facesift.image import load_image  # noqa: E402
from facesift.pipeline import Pipeline  # noqa: E402
from facesift.restoration import create_restorer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))
SIZES = (28, 14, 7)
RESTORERS = ("bicubic", "realesrgan", "facesr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "restoration.png")
    args = parser.parse_args()
    pairs = read_lfw_pairs(FACES / "celeba300-pairs.txt", FACES / "celeba300")
    held_out = [p.b for p in pairs if p.fold >= 5 and p.same][: args.faces]
    restorers = {}
    for name in RESTORERS:
        try:
            restorers[name] = create_restorer(name)
        except ModelNotInstalledError as exc:
            print(f"left out {name}: {exc}")
    pipeline = Pipeline(low_resolution=False)
    embedder = pipeline.embedder
    crops = []
    for path in held_out:
        image = load_image(path)
        crops.append(embedder.align(image, max(pipeline.detector.detect(image), key=lambda f: f.area)))
    columns = ["original", *(f"{size} px: {name}" for size in SIZES for name in ["input", *restorers])]
    fig, axes = plt.subplots(len(crops), len(columns), figsize=(1.25 * len(columns), 1.45 * len(crops)), squeeze=False)
    for row, crop in enumerate(crops):
        reference = embedder.embed(crop)[0]
        tiles = [(crop, "")]
        for size in SIZES:
            small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            tiles.append((cv2.resize(small, crop.shape[:2], interpolation=cv2.INTER_NEAREST), "as captured"))
            for restorer in restorers.values():
                restored = restorer.restore(small, crop.shape[0])
                tiles.append((restored, f"cos {float(embedder.embed(restored)[0] @ reference):.2f}"))
        for col, (tile, caption) in enumerate(tiles):
            ax = axes[row][col]
            ax.imshow(tile)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(caption, fontsize=7)
            if row == 0:
                ax.set_title(columns[col], fontsize=7)
    fig.suptitle("Held-out celeba300 faces shrunk and restored; cos = SFace similarity to the original", fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
