"""Controlled damage to a face, to measure how recognition degrades: resolution, blur, JPEG, noise...

Every degradation acts on the **aligned crop** (the model's input, 112x112 for SFace), after detection
and alignment on the clean photo. That isolates the embedder: a face the detector would miss at 7 px
is still scored, so the numbers say how well the model recognises a small face once it is found.
It is the protocol of the low-resolution numbers in MODELS.md.

    resolution:N  the crop shrunk to N x N px with area averaging, then brought back to its size with
                  bicubic interpolation (N=112 is the identity for a 112 px model);
                  resolution:N+R brings it back with the restorer R instead (realesrgan, facesr: see
                  ``facesift.restoration``), to measure restoration before recognition
    blur:S        Gaussian blur, sigma S px (of the crop)
    jpeg:Q        JPEG re-encoding at quality Q (1-100)
    noise:S       additive Gaussian noise, sigma S grey levels, seeded by the crop's content (reproducible)
    occlusion:F   the lower fraction F of the crop painted mid-grey (a mask or scarf)
    brightness:F  pixel values multiplied by F and clipped
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from facesift.errors import DatasetError
from facesift.resolution import shrink, shrink_and_back


@functools.lru_cache(maxsize=None)
def _restorer(name: str):
    """One restorer per process and name: Real-ESRGAN takes a second to load."""
    from facesift.restoration import create_restorer

    return create_restorer(name)


def _restored_resolution(crop: np.ndarray, level: float, restorer: str) -> np.ndarray:
    return _restorer(restorer).restore(shrink(crop, level), crop.shape[0])


def _blur(crop: np.ndarray, level: float) -> np.ndarray:
    return cv2.GaussianBlur(crop, (0, 0), sigmaX=level) if level > 0 else crop


def _jpeg(crop: np.ndarray, level: float) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", crop[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(level)])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def _noise(crop: np.ndarray, level: float) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(crop.tobytes()).digest()[:8], "little")
    noise = np.random.default_rng(seed).normal(0.0, level, crop.shape)
    return np.clip(crop.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def _occlusion(crop: np.ndarray, level: float) -> np.ndarray:
    out = crop.copy()
    rows = int(round(crop.shape[0] * level))
    if rows:
        out[crop.shape[0] - rows :] = 128
    return out


def _brightness(crop: np.ndarray, level: float) -> np.ndarray:
    return np.clip(crop.astype(np.float64) * level, 0, 255).astype(np.uint8)


#: kind -> (function, default sweep levels from mild to severe, what the level means)
KINDS: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], tuple[float, ...], str]] = {
    "resolution": (shrink_and_back, (112, 56, 28, 14, 7), "face crop width in px"),
    "blur": (_blur, (0, 1, 2, 4, 8), "Gaussian sigma in px"),
    "jpeg": (_jpeg, (90, 50, 20, 10, 5), "JPEG quality"),
    "noise": (_noise, (0, 10, 20, 40, 80), "noise sigma in grey levels"),
    "occlusion": (_occlusion, (0, 0.2, 0.35, 0.5, 0.65), "fraction of the crop hidden from the bottom"),
    "brightness": (_brightness, (1, 0.6, 0.35, 0.2, 0.1), "brightness factor"),
}


@dataclass(frozen=True)
class CropDegradation:
    """One kind of damage at one level, e.g. ``CropDegradation("resolution", 28)`` (written ``resolution:28``).

    ``restorer`` (resolution only) names the restorer that brings the shrunk face back to the model's size,
    e.g. ``CropDegradation("resolution", 14, "realesrgan")``, written ``resolution:14+realesrgan``; bicubic, the
    plain protocol, is the default and is written without a suffix.
    """

    kind: str
    level: float
    restorer: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DatasetError(f"Unknown degradation {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.restorer == "bicubic":
            object.__setattr__(self, "restorer", "")  # the plain protocol: one name, one cache entry
        if self.restorer:
            from facesift.restoration import available_restorers

            if self.kind != "resolution":
                raise DatasetError(f"Only resolution:N takes a restorer (e.g. resolution:14+realesrgan), not {self.kind}")
            if self.restorer not in available_restorers():
                raise DatasetError(f"Unknown restorer {self.restorer!r}; choose one of {', '.join(available_restorers())}")
        if self.kind == "resolution" and self.level < 1:
            raise DatasetError("resolution:N needs N >= 1 px")
        if self.kind == "jpeg" and not 1 <= self.level <= 100:
            raise DatasetError("jpeg:Q needs a quality from 1 to 100")
        if self.kind != "jpeg" and self.level < 0:
            raise DatasetError(f"{self.kind} needs a level >= 0")
        if self.kind == "occlusion" and self.level > 1:
            raise DatasetError("occlusion:F needs a fraction from 0 to 1")

    def is_noop(self, crop_size: int) -> bool:
        """True when this level leaves a ``crop_size`` crop unchanged (resolution:112 on a 112 px model, blur:0...)."""
        neutral = {"resolution": crop_size, "blur": 0, "noise": 0, "occlusion": 0, "brightness": 1}
        return neutral.get(self.kind) == self.level

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.level:g}" + (f"+{self.restorer}" if self.restorer else "")

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        crop = np.ascontiguousarray(crop)
        if self.restorer:
            return _restored_resolution(crop, self.level, self.restorer)
        return KINDS[self.kind][0](crop, self.level)

    @classmethod
    def parse(cls, text: str) -> "CropDegradation":
        """``kind:level`` or ``resolution:N+restorer``."""
        kind, _, rest = text.partition(":")
        level, _, restorer = rest.partition("+")
        try:
            value = float(level)
        except ValueError:
            raise DatasetError(f"Write a degradation as kind:level, e.g. resolution:28 or resolution:14+realesrgan "
                               f"(got {text!r})") from None
        return cls(kind.strip(), value, restorer.strip())


def default_levels(kind: str) -> tuple[float, ...]:
    if kind not in KINDS:
        raise DatasetError(f"Unknown degradation {kind!r}; choose one of {', '.join(KINDS)}")
    return KINDS[kind][1]


def level_meaning(kind: str) -> str:
    return KINDS[kind][2]
