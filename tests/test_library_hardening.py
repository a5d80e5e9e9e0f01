"""What a long-running host needs from the library (issue 17): deletion that is real on disk, private
files, no global side effects on Pillow, no telemetry, bounded decoding of large JPEGs, and a fuzzed
``load_image`` that answers every input with an array or a typed error."""

from __future__ import annotations

import io
import os
import random
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesift.errors import ImageError
from facesift.gallery import open_gallery
from facesift.image import load_image

REPO = Path(__file__).resolve().parents[1]


def _gallery_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file())


def test_deleted_faces_leave_no_trace_in_the_gallery_files(tmp_path, pipeline, faces):
    """After remove_sample and remove, the photos, embeddings and ids are gone from every file on disk
    (the SQLite file, its WAL, the index), and every file is private to the owner."""
    wild = faces / "wild"
    photos = {"obama": wild / "barack_obama" / "obama.jpg", "biden": wild / "joe_biden" / "biden.jpg",
              "kit": wild / "kit_harington" / "john1.jpeg"}
    gallery = open_gallery(f"sqlite:///{tmp_path}/gallery.db", pipeline=pipeline)
    reports = {name: gallery.enroll(f"person-{name}-7f3a", [path], keep_images=True) for name, path in photos.items()}
    assert all(report.added == 1 for report in reports.values())
    gallery.save_index()  # the index file holds every vector now, as it would after any save
    vectors = {}
    for name in photos:
        _, vector = gallery.store.person_vectors([f"person-{name}-7f3a"])[f"person-{name}-7f3a"]
        vectors[name] = vector[0]
    gallery.remove_sample(reports["obama"].results[0].sample_id)
    assert gallery.remove("person-biden-7f3a") == 1
    for path in _gallery_files(tmp_path):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"
    for name in ("obama", "biden"):
        image = photos[name].read_bytes()
        traces = {"photo": image[2000:2064], "embedding f32": vectors[name].astype("<f4").tobytes()[:64],
                  "embedding f16": vectors[name].astype("<f2").tobytes()[:32],
                  "sample id": reports[name].results[0].sample_id.encode()}
        if name == "biden":
            traces["person id"] = b"person-biden-7f3a"
        for path in _gallery_files(tmp_path):
            data = path.read_bytes()
            for what, needle in traces.items():
                assert needle not in data, f"the deleted {name}'s {what} is still in {path.name}"
    kept = photos["kit"].read_bytes()[2000:2064]
    assert any(kept in path.read_bytes() for path in _gallery_files(tmp_path))  # the scan can find what is there
    assert gallery.search(photos["kit"]).decision == "match"
    gallery.close()
    with sqlite3.connect(tmp_path / "gallery.db") as db:
        assert db.execute("PRAGMA secure_delete").fetchone()[0] in (0, 1)  # readable as a plain SQLite file


def _subprocess(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True, text=True, timeout=180,
                          env=(env or os.environ.copy()) | {"PYTHONPATH": str(REPO)})


def test_importing_facesift_leaves_pillow_and_starlette_alone():
    code = """
import PIL.Image
from starlette.formparsers import MultiPartParser
pixels, spool = PIL.Image.MAX_IMAGE_PIXELS, MultiPartParser.spool_max_size
import facesift
from facesift.server import create_app, load_config
create_app(load_config(max_upload_bytes=50_000_000))
assert PIL.Image.MAX_IMAGE_PIXELS == pixels, PIL.Image.MAX_IMAGE_PIXELS
assert MultiPartParser.spool_max_size == spool, MultiPartParser.spool_max_size
print("ok")
"""
    done = _subprocess(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_our_pixel_limit_and_pillows_both_hold_without_the_global_switch():
    big = io.BytesIO()
    Image.new("1", (15_000, 13_000)).save(big, format="PNG")  # 195 Mpx in a few kB: over Pillow's bomb limit too
    with pytest.raises(ImageError, match="over the limit of 64,000,000"):
        load_image(big.getvalue())
    with pytest.raises(ImageError, match="over the limit of 178,956,970"):  # Pillow's limit, still on, as a typed error
        load_image(big.getvalue(), max_pixels=300_000_000)


def test_a_verify_in_a_fresh_home_writes_nothing_outside_our_cache(tmp_path, obama, biden):
    """onnxruntime >= 1.29 writes a device id and an event queue under ~/.cache/Microsoft unless told not to."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")} | {"HOME": str(home)}
    done = _subprocess(f"import facesift; print(facesift.verify({str(obama)!r}, {str(biden)!r}).verified)", env)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert written == [], written
    chose = _subprocess("import facesift, os; print(os.environ['ORT_DISABLE_TELEMETRY'])", env | {"ORT_DISABLE_TELEMETRY": "0"})
    assert chose.stdout.strip() == "0"  # the user's own choice stands


def _jpeg(width: int, height: int, face: Path) -> bytes:
    """A large JPEG: a real face photo pasted onto a big noisy canvas."""
    rng = np.random.default_rng(1)
    canvas = Image.fromarray(rng.integers(0, 255, (height // 16, width // 16, 3), np.uint8)).resize((width, height))
    photo = Image.open(face).convert("RGB")
    photo = photo.resize((photo.width * 4, photo.height * 4))
    canvas.paste(photo, (width // 3, height // 3))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=85)
    return out.getvalue()


def test_large_jpegs_are_decoded_reduced_and_boxes_stay_in_source_pixels(pipeline, obama):
    data = _jpeg(6400, 4800, obama)  # 30.7 Mpx
    full = load_image(data)
    assert full.shape == (4800, 6400, 3)
    reduced = load_image(data, reduce_to=4_000_000)
    assert reduced.shape == (2400, 3200, 3)  # the DCT scale 1/2: at least 4 Mpx
    assert load_image(io.BytesIO(data).getvalue()[:], reduce_to=40_000_000).shape == full.shape
    small = obama.read_bytes()
    assert np.array_equal(load_image(small, reduce_to=4_000_000), load_image(small))  # small photos untouched
    faces = pipeline.detect(data, policy="largest")
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].face.box
    assert 6400 // 3 <= x0 < x1 <= 6400 // 3 + 4 * Image.open(obama).width  # in the 6400x4800 frame
    assert 4800 // 3 <= y0 < y1 <= 4800 // 3 + 4 * Image.open(obama).height


def _mutations(seed: int, originals: list[bytes], count: int) -> list[bytes]:
    rng = random.Random(seed)
    cases: list[bytes] = []
    for n in range(count):
        data = bytearray(rng.choice(originals))
        kind = n % 6
        if kind == 0:  # bit flips
            for _ in range(rng.randint(1, 40)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncation
            data = data[: rng.randrange(1, len(data))]
        elif kind == 2:  # a random header on the rest
            data[: rng.randint(1, 64)] = rng.randbytes(rng.randint(1, 64))
        elif kind == 3:  # random bytes
            data = bytearray(rng.randbytes(rng.randint(0, 4096)))
        elif kind == 4:  # a chunk overwritten
            start = rng.randrange(len(data))
            data[start : start + 512] = rng.randbytes(512)
        else:  # huge declared dimensions in a PNG/GIF header
            data = bytearray(originals[1])
            data[16:24] = rng.randbytes(8)
        cases.append(bytes(data))
    return cases


def _originals(obama: Path) -> list[bytes]:
    photo = Image.open(obama).convert("RGB").resize((64, 64))
    originals = [obama.read_bytes()]
    for fmt, mode in (("PNG", "RGB"), ("GIF", "P"), ("WEBP", "RGB"), ("BMP", "RGB"), ("TIFF", "CMYK"), ("PNG", "I;16"), ("PNG", "1")):
        out = io.BytesIO()
        (photo.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257)).save(out, format=fmt)
        originals.append(out.getvalue())
    return originals


def test_fuzzed_images_give_an_array_or_a_typed_error(obama):
    """300 seeded mutations of real and encoded images: never anything but an RGB array or an ImageError."""
    outcomes = {"array": 0, "error": 0}
    for data in _mutations(17, _originals(obama), 300):
        try:
            array = load_image(data, max_pixels=20_000_000)
        except ImageError:
            outcomes["error"] += 1
        else:
            assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
            outcomes["array"] += 1
    assert outcomes["array"] > 20 and outcomes["error"] > 20, outcomes
