"""Pipeline speed and memory against the naive OpenCV way, in one run.

    python benchmarks/pipeline.py [--photos 600]

Measures detection ms per 640x480 photo, embedding ms per face at batch 1 and 32, end-to-end photos per
second on real 250x250 single-face photos (celeba300), and peak memory. The baseline is what most code
does today: OpenCV's FaceDetectorYN + FaceRecognizerSF on the packaged files, one image at a time. Each
end-to-end variant runs in its own process so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))


def celeba_photos(count: int) -> list[Path]:
    people = sorted(p for p in (FACES / "celeba300").iterdir() if p.is_dir())
    files = [f for person in people for f in sorted(person.iterdir())]
    step = max(1, len(files) // count)
    return files[::step][:count]


def timed(function, repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def end_to_end(kind: str, count: int) -> dict:
    files = celeba_photos(count)
    if kind == "facesift":
        import facesift

        pipeline = facesift.get_pipeline()
        pipeline.represent_batch(files[:40])  # load models, warm up
        start = time.perf_counter()
        results = pipeline.represent_batch(files)
        elapsed = time.perf_counter() - start
        found = sum(bool(r.faces) for r in results)
    else:
        from facesift.detection.yunet import YUNET
        from facesift.models import locate_source
        from facesift.recognition.sface import SFACE

        detector = cv2.FaceDetectorYN.create(str(locate_source(YUNET)), "", (320, 320), 0.6, 0.3, 5000)
        recognizer = cv2.FaceRecognizerSF.create(str(locate_source(SFACE)), "")

        def naive(path: Path):
            image = cv2.imread(str(path))
            detector.setInputSize((image.shape[1], image.shape[0]))
            _, rows = detector.detect(image)
            if rows is None:
                return None
            return recognizer.feature(recognizer.alignCrop(image, rows[0]))

        for path in files[:40]:
            naive(path)
        start = time.perf_counter()
        found = sum(naive(path) is not None for path in files)
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"photos": len(files), "faces_found": found, "seconds": elapsed, "photos_per_s": len(files) / elapsed, "peak_rss_mb": peak_mb}


def components() -> dict:
    import facesift
    from facesift.image import load_image

    pipeline = facesift.get_pipeline()
    photos = sorted((FACES / "deepface").rglob("*.jpg"))[:20]
    vga = [cv2.resize(load_image(p), (640, 480), interpolation=cv2.INTER_AREA) for p in photos]
    detect_ms = timed(lambda: [pipeline.detector.detect(img) for img in vga], 3) / len(vga) * 1000

    from facesift.detection.yunet import YUNET
    from facesift.models import locate_source

    raw = cv2.FaceDetectorYN.create(str(locate_source(YUNET)), "", (640, 480), 0.6, 0.3, 5000)
    bgr = [cv2.cvtColor(img, cv2.COLOR_RGB2BGR) for img in vga]
    raw_detect_ms = timed(lambda: [raw.detect(img) for img in bgr], 3) / len(bgr) * 1000

    crops = []
    for path in celeba_photos(64):
        image = load_image(path)
        found = pipeline.detector.detect(image)
        if found:
            crops.append(pipeline.embedder.align(image, found[0]))
    crops = np.stack(crops[:32])
    batch1_ms = timed(lambda: [pipeline.embedder.embed(c) for c in crops], 3) / len(crops) * 1000
    default_batch = pipeline.embedder.max_batch
    pipeline.embedder.max_batch = 32  # one network call for all 32 faces
    batch32_ms = timed(lambda: pipeline.embedder.embed(crops), 5) / len(crops) * 1000
    pipeline.embedder.max_batch = default_batch
    from facesift.recognition.sface import SFACE

    recognizer = cv2.FaceRecognizerSF.create(str(locate_source(SFACE)), "")  # the packaged int8 file, as is
    crops_bgr = [np.ascontiguousarray(c[:, :, ::-1]) for c in crops]
    raw_embed_ms = timed(lambda: [recognizer.feature(c) for c in crops_bgr], 3) / len(crops) * 1000
    return {
        "detect_ms_per_640x480": detect_ms,
        "opencv_facedetectoryn_ms_per_640x480": raw_detect_ms,
        "embed_ms_per_face_batch1": batch1_ms,
        "embed_ms_per_face_batch32": batch32_ms,
        "opencv_facerecognizersf_ms_per_face": raw_embed_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=600)
    parser.add_argument("--only", choices=["facesift", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(end_to_end(args.only, args.photos)))
        return
    runs = {}
    for kind in ("naive", "facesift"):
        done = subprocess.run(
            [sys.executable, __file__, "--only", kind, "--photos", str(args.photos)],
            capture_output=True, text=True, check=True,
        )
        runs[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    parts = components()
    ratio = runs["facesift"]["photos_per_s"] / runs["naive"]["photos_per_s"]
    print(f"# facesift pipeline benchmark, {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"detection, ms per 640x480 photo:     facesift {parts['detect_ms_per_640x480']:.1f}   "
          f"raw FaceDetectorYN {parts['opencv_facedetectoryn_ms_per_640x480']:.1f}")
    print(f"embedding, ms per face:              batch 1 {parts['embed_ms_per_face_batch1']:.1f}   "
          f"batch 32 {parts['embed_ms_per_face_batch32']:.1f}   raw FaceRecognizerSF {parts['opencv_facerecognizersf_ms_per_face']:.1f}")
    for kind in ("naive", "facesift"):
        run = runs[kind]
        print(f"end to end, {kind:8s}: {run['photos']} celeba300 photos (250x250) in {run['seconds']:.1f} s = "
              f"{run['photos_per_s']:.1f} photos/s, faces found {run['faces_found']}, peak RSS {run['peak_rss_mb']:.0f} MB")
    print(f"speed-up over the naive baseline: {ratio:.2f}x")


if __name__ == "__main__":
    main()
