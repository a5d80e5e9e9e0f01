"""Fusion: several embedders as one, in a form vector search can use.

Each member's L2-normalised embedding is scaled by the square root of its weight and the pieces are
concatenated, so the cosine of two fused vectors is exactly the weighted sum of the members' cosines
(weights sum to 1, so fused vectors are unit length). The weights fold in each model's score spread
(z-normalisation), so this equals score-level fusion of z-normalised cosines up to a monotone map, and a
gallery can index the fused vectors like any other.

Members need different crops (SFace's 112 px ArcFace crop, dlib's 150 px chip, FaceNet's looser 160 px
crop), so ``align`` packs the members' own crops side by side in one strip and ``embed`` hands each member
its part: the fused vector is exactly the members' vectors, nothing is resampled twice. The members run in
parallel threads (onnxruntime and dlib do their work outside Python).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from facesift.errors import ClosedError, InvalidArgumentError
from facesift.recognition.base import Embedder, ModelCard, load_card, register_embedder
from facesift.recognition.lookup import create_embedder
from facesift.results import Face

#: the ``accurate`` preset: weights on each model's cosine, learned on celeba300 folds 1-5 over SFace, dlib
#: and FaceNet (FaceNet's learned weight was 0, so it is left out; docs/models.md)
ACCURATE_WEIGHTS = {"sface": 0.1607, "dlib": 0.8393}


class FusionEmbedder(Embedder):
    """Weighted fusion of ``members`` (embedder name -> weight on its cosine); ``card`` gives its thresholds.

    A composite: it owns its members and the threads that run them, and closes them with itself."""

    def __init__(self, members: dict[str, float], card: ModelCard, member_options: dict[str, dict] | None = None):
        if not members or any(w <= 0 for w in members.values()):
            raise InvalidArgumentError(f"A fusion needs members with positive weights, got {members}")
        self.name = card.name
        self.card = card
        total = sum(members.values())
        self.members = [create_embedder(n, **(member_options or {}).get(n, {})) for n in members]
        self.scales = [float(np.sqrt(w / total)) for w in members.values()]
        if card.dims != sum(m.dims for m in self.members):
            raise ValueError(f"Card {card.name!r} says {card.dims}-d; the members give {sum(m.dims for m in self.members)}")
        self.input_size = max(m.input_size for m in self.members)
        self._offsets = np.cumsum([0] + [m.input_size for m in self.members])
        self._pool = ThreadPoolExecutor(len(self.members), thread_name_prefix="facesift-fusion")
        self._closed = False

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """Every member's own crop, side by side in one strip (``input_size`` high)."""
        strip = np.zeros((self.input_size, int(self._offsets[-1]), 3), dtype=np.uint8)
        for member, left in zip(self.members, self._offsets[:-1], strict=True):
            strip[: member.input_size, left : left + member.input_size] = member.align(image, face)
        return strip

    def parts(self, strip: np.ndarray) -> list[np.ndarray]:
        """The members' crops back out of a strip made by :meth:`align`."""
        return [strip[: m.input_size, left : left + m.input_size] for m, left in zip(self.members, self._offsets[:-1], strict=True)]

    def quality_crop(self, crop: np.ndarray) -> np.ndarray:
        """Quality is judged on the first member's crop (SFace's in the presets)."""
        return self.parts(crop)[0]

    def embed(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        if self._closed:
            raise ClosedError(f"The {self.name!r} embedder was closed; create a new one")
        strips = [np.asarray(c, dtype=np.uint8) for c in (crops[None] if np.ndim(crops) == 3 else crops)]
        if not strips:
            return np.zeros((0, self.dims), dtype=np.float32)
        split = [self.parts(s) for s in strips]

        def run(index: int) -> np.ndarray:
            return self.members[index].embed([parts[index] for parts in split])

        vectors = list(self._pool.map(run, range(len(self.members))))
        return np.concatenate([scale * v for scale, v in zip(self.scales, vectors, strict=True)], axis=1).astype(np.float32)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Shut the members' threads down (after the batches they run) and close every member."""
        self._closed = True
        self._pool.shutdown(wait=True)
        for member in self.members:
            member.close()


@register_embedder("accurate")
def accurate(*, flip: bool | None = None, member_options: dict[str, dict] | None = None) -> FusionEmbedder:
    """The ``accurate`` preset: SFace + dlib. ``flip`` sets every member's test-time mirroring (by default each
    member's own: on for dlib, off for SFace, as the card was calibrated); ``member_options`` passes options to
    one member by name."""
    options = {name: dict((member_options or {}).get(name, {})) for name in ACCURATE_WEIGHTS}
    unknown = set(member_options or {}) - set(ACCURATE_WEIGHTS)
    if unknown:
        raise InvalidArgumentError(f"The accurate fusion has no member {', '.join(sorted(unknown))}; "
                                   f"its members are {', '.join(ACCURATE_WEIGHTS)}")
    if flip is not None:
        for member in options.values():
            member.setdefault("flip", flip)
    return FusionEmbedder(ACCURATE_WEIGHTS, load_card("accurate"), options)
