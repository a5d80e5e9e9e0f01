"""Video speed: facesift.video.analyze against the naive loop (detect and embed every face of every frame), one run.

    python benchmarks/video.py [--repeat 2] [--stride 3]

The clip is ``../shared/faces/video/short_hamilton_clip.mp4`` (640x360, 29.97 fps, 9.2 s, 1 to 7 faces a
frame), with a gallery enrolled from its two reference photos. Both loops decode the same frames with
OpenCV on the same pipeline (YuNet + SFace); the naive loop also identifies every face it embeds. Reported:
frames per second (wall clock, best of ``--repeat``), the speed against real time (video seconds per second
of work), and the process CPU seconds, which a busy shared host inflates less than the wall clock.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))
CLIP = FACES / "video" / "short_hamilton_clip.mp4"


def naive(pipeline, gallery) -> tuple[int, int]:
    """What a script does without a tracker: every frame detected, every face embedded and searched."""
    capture = cv2.VideoCapture(str(CLIP))
    frames = faces = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        found = pipeline.represent(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        for face in found:
            gallery.search_embedding(face.embedding)
        frames += 1
        faces += len(found)
    capture.release()
    return frames, faces


def measure(function, repeat: int):
    best = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        elapsed = (time.perf_counter() - wall, time.process_time() - cpu, result)
        best = elapsed if best is None or elapsed[0] < best[0] else best
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--stride", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import numpy as np

    import facesift
    from facesift.gallery import open_gallery
    from facesift.video import analyze

    pipeline = facesift.get_pipeline()
    pipeline.detect(np.zeros((360, 640, 3), np.uint8))
    with tempfile.TemporaryDirectory() as folder, open_gallery(Path(folder) / "g.db", pipeline=pipeline) as gallery:
        for person in ("lin-manuel-miranda", "alex-lacamoire"):
            gallery.enroll(person, [FACES / "video" / f"{person}.png"])
        duration = cv2.VideoCapture(str(CLIP)).get(cv2.CAP_PROP_FRAME_COUNT) / 29.97
        print(f"# facesift video benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
        print(f"clip: {CLIP.name}, 640x360, {duration:.2f} s")
        wall, cpu, (frames, faces) = measure(lambda: naive(pipeline, gallery), args.repeat)
        print(f"naive loop (every frame): {frames} frames in {wall:.2f} s = {frames / wall:.1f} fps, "
              f"{duration / wall:.2f}x real time, CPU {cpu:.2f} s, {faces} faces embedded")
        naive_fps = frames / wall
        wall, cpu, result = measure(lambda: analyze(CLIP, gallery=gallery, stride=args.stride), args.repeat)
        print(
            f"facesift video (stride {args.stride}): {result.frames} frames in {wall:.2f} s = {result.frames / wall:.1f} fps, "
            f"{duration / wall:.2f}x real time, CPU {cpu:.2f} s, {result.frames_detected} frames detected, "
            f"{result.faces_embedded} faces embedded, "
            f"{len(result.tracks)} tracks, people {sorted(result.people())}"
        )
        print(f"speed-up over the naive loop: {result.frames / wall / naive_fps:.2f}x")


if __name__ == "__main__":
    main()
