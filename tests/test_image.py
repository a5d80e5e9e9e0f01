"""Image input: every format and container we promise, and a typed error for every bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import facesift
from facesift.image import image_sha256, load_image


@pytest.fixture(scope="module")
def photo(obama) -> Image.Image:
    return Image.open(obama).convert("RGB")


@pytest.mark.parametrize(
    "fmt, mode",
    [("JPEG", "RGB"), ("PNG", "RGB"), ("WEBP", "RGB"), ("BMP", "RGB"), ("GIF", "P"), ("PPM", "RGB"),
     ("PPM", "L"), ("TIFF", "RGB"), ("PNG", "RGBA"), ("PNG", "LA"), ("PNG", "I;16")],
)
def test_formats_decode_to_rgb_and_keep_the_face(photo, pipeline, fmt, mode):
    buffer = io.BytesIO()
    converted = photo.convert("RGBA" if mode == "LA" else mode) if mode != "I;16" else photo.convert("L")
    if mode == "LA":
        converted = photo.convert("LA")
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(converted).astype("<u2") * 257)
    converted.save(buffer, format=fmt)
    pixels = load_image(buffer.getvalue())
    assert pixels.dtype == np.uint8 and pixels.shape == (photo.height, photo.width, 3)
    assert len(pipeline.detect(pixels)) == 1


def test_every_container_gives_the_same_pixels(obama):
    from_path = load_image(obama)
    data = obama.read_bytes()
    assert np.array_equal(load_image(str(obama)), from_path)
    assert np.array_equal(load_image(data), from_path)
    assert np.array_equal(load_image(bytearray(data)), from_path)
    assert np.array_equal(load_image(io.BytesIO(data)), from_path)
    with open(obama, "rb") as handle:
        assert np.array_equal(load_image(handle), from_path)
    assert np.array_equal(load_image(Image.open(obama)), from_path)
    assert np.array_equal(load_image(from_path), from_path)
    assert image_sha256(obama) == image_sha256(data)


def test_exif_orientation_is_applied(photo, pipeline):
    rotated = photo.transpose(Image.Transpose.ROTATE_90)  # stored sideways...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...and tagged "rotate 90 clockwise to display"
    buffer = io.BytesIO()
    rotated.save(buffer, format="JPEG", exif=exif.tobytes())
    pixels = load_image(buffer.getvalue())
    assert pixels.shape[:2] == (photo.height, photo.width)
    face = pipeline.detect(pixels)[0].face
    assert abs(face.landmarks[0][1] - face.landmarks[1][1]) < 0.2 * face.eye_distance  # eyes level again


def test_real_greyscale_files(faces, pipeline):
    for path in (faces / "orl" / "s1" / "1.pgm", faces / "yale" / "subject01" / "happy.gif"):
        pixels = load_image(path)
        assert pixels.shape[2] == 3 and np.array_equal(pixels[..., 0], pixels[..., 2])
        assert len(pipeline.detect(pixels)) >= 1, path


def test_arrays_of_other_types(photo):
    grey = np.asarray(photo.convert("L"))
    assert load_image(grey).shape == grey.shape + (3,)
    assert load_image(grey[:, :, None]).shape == grey.shape + (3,)
    as_float = np.asarray(photo, dtype=np.float32) / 255.0
    assert np.abs(load_image(as_float).astype(int) - np.asarray(photo)).max() <= 1
    transparent = np.zeros((10, 10, 4), dtype=np.uint8)
    assert (load_image(transparent) == 255).all()  # fully transparent composites to white


@pytest.mark.parametrize(
    "make_input, error, words",
    [
        (lambda d: b"", facesift.EmptyImageError, "empty"),
        (lambda d: b"hello, this is text", facesift.NotAnImageError, "not an image"),
        (lambda d: d[: len(d) // 2], facesift.TruncatedImageError, "truncated"),
        (lambda d: np.zeros((0, 10, 3), np.uint8), facesift.EmptyImageError, "zero size"),
        (lambda d: np.zeros((10, 10, 2), np.uint8), facesift.UnsupportedImageError, "shape"),
        (lambda d: np.full((4, 4), np.nan), facesift.UnsupportedImageError, "NaN"),
        (lambda d: io.StringIO("text"), facesift.NotAnImageError, "text mode"),
        (lambda d: 42, facesift.UnsupportedImageError, "pass a path"),
    ],
)
def test_bad_inputs_get_typed_errors(obama, make_input, error, words):
    with pytest.raises(error, match=words):
        load_image(make_input(obama.read_bytes()))


def test_decompression_bomb_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(buffer, format="PNG")  # 900 Mpx in a few hundred kB
    assert len(buffer.getvalue()) < 2_000_000
    with pytest.raises(facesift.ImageTooLargeError, match="over the limit"):
        load_image(buffer.getvalue())
    with pytest.raises(facesift.ImageTooLargeError):
        load_image(np.zeros((100, 100, 3), np.uint8), max_pixels=5_000)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(facesift.NotAnImageError, match="directory"):
        load_image(tmp_path)


def test_a_bad_image_in_a_batch_loses_nothing_else(obama, biden, pipeline):
    results = pipeline.represent_batch([obama, b"garbage", biden, b""])
    assert [len(r.faces) for r in results] == [1, 0, 1, 0]
    assert results[1].error_type == "NotAnImageError" and results[3].error_type == "EmptyImageError"
    assert results[0].error is None and results[2].error is None
