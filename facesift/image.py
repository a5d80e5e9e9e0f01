"""Turn whatever a caller hands us into an RGB uint8 array, or a typed error that says why not."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facesift.errors import EmptyImageError, ImageTooLargeError, NotAnImageError, TruncatedImageError, UnsupportedImageError

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], np.ndarray, Image.Image]

#: File name endings of the image formats we read (for expanding folders into image files).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".pgm", ".ppm", ".pbm", ".tif", ".tiff"}

#: Default pixel limit: 64 megapixels is far above any camera a face photo comes from, and far below a bomb.
DEFAULT_MAX_PIXELS = 64_000_000

_HIGH_BIT_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def load_image(source: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS, reduce_to: int | None = None) -> np.ndarray:
    """Decode ``source`` to a contiguous RGB uint8 array of shape (H, W, 3).

    Accepts a path, raw bytes, a binary file object, a numpy array (greyscale, RGB or RGBA; uint8, or float
    in [0, 1]) or a PIL image. EXIF orientation is applied, greyscale is expanded to three channels and an
    alpha channel is composited over white. ``reduce_to`` (pixels) decodes a larger JPEG at the smallest
    DCT scale (1/2, 1/4, 1/8) that keeps at least that many pixels, so a 40 Mpx photo never costs 40 Mpx of
    memory when detection needs far less (``decode_image`` also says by how much it was reduced).
    """
    return decode_image(source, max_pixels=max_pixels, reduce_to=reduce_to)[0]


def decode_image(
    source: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS, reduce_to: int | None = None
) -> tuple[np.ndarray, float]:
    """``load_image`` and the factor its width and height were reduced by (1.0: full size)."""
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels), 1.0
    if isinstance(source, Image.Image):
        return _from_pil(source, max_pixels, name="PIL image"), 1.0
    data, name = _read_bytes(source)
    return _decode(data, name, max_pixels, reduce_to)


def image_sha256(source: ImageInput) -> str:
    """Content hash of an image input: of the file bytes when there are any, else of the decoded pixels."""
    if isinstance(source, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(source).tobytes()).hexdigest()
    if isinstance(source, Image.Image):
        return hashlib.sha256(source.tobytes()).hexdigest()
    data, _ = _read_bytes(source)
    return hashlib.sha256(data).hexdigest()


def _read_bytes(source: ImageInput) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "image bytes"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"No such image file: {path}")
        if path.is_dir():
            raise NotAnImageError(f"{path} is a directory, not an image file")
        return path.read_bytes(), str(path)
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            raise NotAnImageError("The file object was opened in text mode; open it with 'rb'")
        return bytes(data), getattr(source, "name", "file object")
    raise UnsupportedImageError(
        f"Cannot read an image from {type(source).__name__}; pass a path, bytes, a binary file object, "
        "a numpy array or a PIL image"
    )


def _decode(data: bytes, name: str, max_pixels: int, reduce_to: int | None) -> tuple[np.ndarray, float]:
    if not data:
        raise EmptyImageError(f"{name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's bomb warning: we check the size ourselves, below
            pil = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # Pillow's own limit (its MAX_IMAGE_PIXELS, left as the host set it)
        limit = min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS) if Image.MAX_IMAGE_PIXELS else max_pixels
        raise ImageTooLargeError(f"{name} is over the limit of {limit:,} pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImageError(f"{name} is not an image in a format we can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotAnImageError(f"{name} could not be opened as an image: {exc}") from exc
    _check_size(pil.size, name, max_pixels)
    full_width = pil.width
    if reduce_to is not None and pil.format == "JPEG" and pil.width * pil.height > reduce_to:
        shrink = (reduce_to / (pil.width * pil.height)) ** 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pil.draft(pil.mode, (max(1, int(pil.width * shrink)), max(1, int(pil.height * shrink))))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pil.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
            raise TruncatedImageError(f"{name} is truncated: its data ends before the image does") from exc
        raise NotAnImageError(f"{name} could not be decoded: {exc}") from exc
    return _from_pil(pil, max_pixels, name), pil.width / full_width


def _check_size(size: tuple[int, int], name: str, max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise EmptyImageError(f"{name} has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )


def _from_pil(pil: Image.Image, max_pixels: int, name: str) -> np.ndarray:
    _check_size(pil.size, name, max_pixels)
    try:
        pil = ImageOps.exif_transpose(pil)
    except (OSError, SyntaxError, ValueError, TypeError):
        pass  # a broken EXIF block must not cost the user the picture
    if pil.mode in _HIGH_BIT_DEPTH_MODES:
        return _from_array(np.asarray(pil), max_pixels)
    if pil.mode in ("RGBA", "LA", "PA") or (pil.mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(background, rgba)
    if pil.mode not in ("RGB", "L", "P", "1", "CMYK", "YCbCr", "RGBA", "LAB", "HSV", "RGBX"):
        raise UnsupportedImageError(f"{name} has pixel mode {pil.mode!r}, which we do not handle")
    return np.ascontiguousarray(np.asarray(pil.convert("RGB"), dtype=np.uint8))


def _from_array(array: np.ndarray, max_pixels: int) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise UnsupportedImageError(
            f"An image array must be HxW, HxWx1, HxWx3 or HxWx4; got shape {array.shape}"
        )
    _check_size((array.shape[1], array.shape[0]), "image array", max_pixels)
    array = _to_uint8(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        array = (array[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise UnsupportedImageError("The image array holds NaN or infinite values")
        scale = 255.0 if array.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(array * scale, 0, 255).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        peak = int(array.max(initial=0))
        if peak <= 255:
            return np.clip(array, 0, 255).astype(np.uint8)
        bits = 16 if peak <= 65535 else int(np.ceil(np.log2(peak + 1)))
        return (array.astype(np.float64) * (255.0 / (2**bits - 1))).round().astype(np.uint8)
    raise UnsupportedImageError(f"Image arrays of dtype {array.dtype} are not supported")
