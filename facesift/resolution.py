"""How much detail a face really has, in "pixels across", whatever its size in the photo.

A face can be small in the photo (few pixels between the eyes) or large but blurred, e.g. a small image that was
upscaled, which is how the resolution sweep feeds it ("shrunk to N px and back"). Eye distance alone misses the
second case; :func:`detail_size` finds it by shrinking the aligned crop to ever smaller sizes and back: below the
face's true resolution each step loses a similar share of detail, at it the loss jumps.
"""

from __future__ import annotations

import cv2
import numpy as np

from facesift.alignment import ARCFACE_TEMPLATE_112
from facesift.results import Face

#: eye distance of the 112 px ArcFace template: a face with eyes this far apart is "112 px across"
TEMPLATE_EYE_DISTANCE = float(np.hypot(*(ARCFACE_TEMPLATE_112[1] - ARCFACE_TEMPLATE_112[0])))
_SIZES = (10, 14, 20, 28, 40, 56, 80)
#: one step up in size losing more than this factor of detail marks the true resolution (measured on real
#: crops: 1.2-1.6 between steps of a sharp face, 2.7-3.3 at the size a face was shrunk to)
_JUMP = 2.0
#: below this mean grey-level change at 10 px there is no detail left to measure (a 7 px face: 1.3-2.1)
_FLAT = 3.0


def shrink(crop: np.ndarray, size: float) -> np.ndarray:
    """The crop at ``size`` x ``size`` px, averaged over each new pixel as a camera sensor would."""
    side = max(1, int(round(size)))
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)


def shrink_and_back(crop: np.ndarray, size: float) -> np.ndarray:
    """A face that was ``size`` px across, upsampled (bicubic) back to the crop's size: the sweep's protocol."""
    height, width = crop.shape[:2]
    return cv2.resize(shrink(crop, size), (width, height), interpolation=cv2.INTER_CUBIC)


def detail_size(crop: np.ndarray) -> int:
    """The resolution (px across) an aligned 112 px RGB crop actually carries: 7, one of 10-80, or 112."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    losses = [float(np.abs(grey - shrink_and_back(grey, size)).mean()) for size in _SIZES]
    if losses[0] < _FLAT:
        return 7
    for size, before, after in zip(_SIZES[1:], losses, losses[1:], strict=False):
        if before > _JUMP * max(after, 1e-6):
            return size
    return grey.shape[0]


def effective_eye_distance(face: Face, crop: np.ndarray) -> float:
    """The eye distance (source px) the face would have if it were as sharp as its detail says; the smaller
    of that and the measured one."""
    return min(face.eye_distance, detail_size(crop) * TEMPLATE_EYE_DISTANCE / crop.shape[0])
