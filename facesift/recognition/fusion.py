"""Fusion: several embedders as one, in a form vector search can use.

Each member's L2-normalised embedding is scaled by the square root of its weight and the pieces are
concatenated, so the cosine of two fused vectors is exactly the weighted sum of the members' cosines
(weights sum to 1, so fused vectors are unit length). Weights fold in each model's score spread
(z-normalisation), so this equals score-level fusion of z-normalised cosines up to a monotone map, and a
gallery can index the fused vectors like any other.

Members need different crops from the original photo (SFace's 112 px ArcFace crop, dlib's chip, FaceNet's
160 px looser crop). ``align`` therefore returns one larger "canvas": the photo warped onto the ArcFace
template, zoomed out and at a higher resolution, in which the landmarks sit at known positions; each member
then takes its own crop from the canvas. The members run in parallel threads (onnxruntime and dlib do their
work outside Python).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from facesift.alignment import align_face, template_for
from facesift.recognition.base import Embedder, ModelCard, create_embedder, load_card, register_embedder
from facesift.results import Face

#: canvas side and zoom-out: wide enough for dlib's chip (padding 0.25) and FaceNet's margin, and at least
#: the resolution any member samples at
CANVAS_SIZE = 256
CANVAS_MARGIN = 0.8

#: the ``accurate`` preset: weights on each model's cosine, learned on celeba300 folds 1-5 (docs/models.md)
ACCURATE_WEIGHTS = {"sface": 0.5, "dlib": 0.3, "facenet": 0.2}


class FusionEmbedder(Embedder):
    """Weighted fusion of ``members`` (embedder name -> weight on its cosine); ``card`` gives its thresholds."""

    input_size = CANVAS_SIZE

    def __init__(self, members: dict[str, float], card: ModelCard, member_options: dict[str, dict] | None = None):
        if not members or any(w <= 0 for w in members.values()):
            raise ValueError(f"A fusion needs members with positive weights, got {members}")
        self.name = card.name
        self.flip = False  # members apply their own test-time augmentation
        self.card = card
        total = sum(members.values())
        self.members = [create_embedder(n, **(member_options or {}).get(n, {})) for n in members]
        self.scales = [float(np.sqrt(w / total)) for w in members.values()]
        if card.dims != sum(m.dims for m in self.members):
            raise ValueError(f"Card {card.name!r} says {card.dims}-d; the members give {sum(m.dims for m in self.members)}")
        points = template_for(CANVAS_SIZE, CANVAS_MARGIN)
        half = CANVAS_SIZE / (1 + CANVAS_MARGIN) / 2
        centre = CANVAS_SIZE / 2
        self._canvas_face = Face(
            box=(centre - half, centre - half, centre + half, centre + half),
            landmarks=tuple((float(x), float(y)) for x, y in points),
            score=1.0,
            detector="canvas",
        )
        self._pool = ThreadPoolExecutor(len(self.members), thread_name_prefix="facesift-fusion")

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        return align_face(image, face.landmarks_array(), CANVAS_SIZE, margin=CANVAS_MARGIN)

    def quality_crop(self, crop: np.ndarray) -> np.ndarray:
        """The tight 112 px ArcFace crop inside the canvas, so quality reads the same as with SFace."""
        return align_face(crop, np.asarray(self._canvas_face.landmarks), 112)

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        def run(member: Embedder) -> np.ndarray:
            return member.embed([member.align(canvas, self._canvas_face) for canvas in crops])

        parts = list(self._pool.map(run, self.members))
        return np.concatenate([scale * part for scale, part in zip(self.scales, parts)], axis=1)


@register_embedder("accurate")
def accurate(**options) -> FusionEmbedder:
    """The ``accurate`` preset: SFace + dlib + FaceNet."""
    return FusionEmbedder(ACCURATE_WEIGHTS, load_card("accurate"), **options)


@register_embedder("fast")
def fast(**options) -> Embedder:
    """The ``fast`` preset: SFace alone (its embeddings and model name are SFace's)."""
    return create_embedder("sface", **options)
