"""Frames from a file, a camera or a stream, through OpenCV; every way a video can be unreadable has its own error.

OpenCV's FFmpeg backend opens a PNG as a one-frame video and reports a cut-short MP4 just as it reports a text
file (it cannot open either), so the first bytes are looked at to say which it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facesift.errors import EmptyVideoError, NotAVideoError, TruncatedVideoError, VideoTooLongError

VideoInput = str | os.PathLike | int

#: a file whose frames end before this share of the declared count is reported as cut short
COMPLETE_SHARE = 0.9


@dataclass(frozen=True)
class VideoInfo:
    """What the container declares; ``frame_count`` is 0 for a camera or a live stream."""

    source: str
    fps: float
    frame_count: int
    width: int
    height: int
    live: bool

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.frame_count and self.fps else 0.0


def _container(head: bytes) -> str | None:
    """The video container the first bytes announce, if any (MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV)."""
    if head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"free", b"wide"):
        return "MP4/QuickTime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith(b"\x00\x00\x01\xba") or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47):
        return "MPEG"
    if head.startswith(b"FLV"):
        return "FLV"
    return None


def _mp4_without_frames(path: Path) -> bool:
    """An MP4 whose top-level boxes are all there (index included) while its media data box is empty."""
    import struct

    data, offset, boxes = path.read_bytes(), 0, {}
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size < 8 or offset + size > len(data):
            return False  # a box runs past the end: cut short, not empty
        boxes[kind] = boxes.get(kind, 0) + size - 8
        offset += size
    return b"moov" in boxes and boxes.get(b"mdat", 0) == 0


def _is_image(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError):
        return False


def _is_live(source: VideoInput) -> bool:
    return isinstance(source, int) or (isinstance(source, str) and "://" in source and not source.startswith("file://"))


class VideoReader:
    """Opens ``source`` (a path, a camera index, or an rtsp/http URL) and yields RGB frames once.

    ``max_seconds`` refuses a file declared longer at once, and stops a live source after that long.
    """

    def __init__(self, source: VideoInput, *, max_seconds: float | None = None) -> None:
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        self.live = _is_live(source)
        label = f"camera {source}" if isinstance(source, int) else str(source)
        if not self.live:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"No video file at {path}")
            if path.stat().st_size == 0:
                raise EmptyVideoError(f"{path} is empty (0 bytes)")
            if _is_image(path):
                raise NotAVideoError(f"{path} is a still image, not a video; use facesift detect or gallery search for photos")
            source = str(path)
        self._capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG) if not isinstance(source, int) else cv2.VideoCapture(source)
        if not self._capture.isOpened():
            self._capture.release()
            if self.live:
                raise NotAVideoError(f"Could not open {label}: no camera there, or the stream is unreachable")
            with open(source, "rb") as handle:
                kind = _container(handle.read(512))
            if kind == "MP4/QuickTime" and _mp4_without_frames(Path(source)):
                raise EmptyVideoError(f"{label} is a complete MP4 with no frames in it")
            if kind is not None:
                raise TruncatedVideoError(f"{label} starts like an {kind} video but cannot be decoded: it is cut short or damaged")
            raise NotAVideoError(f"{label} is not a video any decoder here can read (MP4, WebM, AVI, MPEG, FLV...)")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = fps if 0 < fps < 1000 else 30.0
        declared = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        count = int(declared) if not self.live and 0 < declared < 1e9 else 0
        width, height = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.info = VideoInfo(label, fps, count, width, height, self.live)
        self.max_seconds = max_seconds
        if max_seconds is not None and self.info.duration > max_seconds:
            self._capture.release()
            raise VideoTooLongError(f"{label} runs {self.info.duration:.1f} s; the limit is {max_seconds:g} s")

    def frames(self, *, limit: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(frame index, RGB frame) in order; ``limit`` stops after that many frames."""
        stop = limit
        if self.max_seconds is not None:
            most = int(self.max_seconds * self.info.fps)
            stop = most if stop is None else min(stop, most)
        index = 0
        try:
            while stop is None or index < stop:
                ok, frame = self._capture.read()
                if not ok or frame is None:
                    break
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            self._capture.release()
        if index == 0:
            raise EmptyVideoError(f"{self.info.source} has no frame to decode")
        wanted = self.info.frame_count if stop is None else min(self.info.frame_count, stop)
        if not self.live and wanted and index < COMPLETE_SHARE * wanted:
            raise TruncatedVideoError(
                f"{self.info.source} ends after {index} of its {self.info.frame_count} frames: it is cut short or damaged"
            )

    def close(self) -> None:
        self._capture.release()


def probe(source: VideoInput, *, max_seconds: float | None = None) -> VideoInfo:
    """Open a video, read its first frame and close it: the checks an upload gets before it is queued."""
    reader = VideoReader(source, max_seconds=max_seconds)
    for _ in reader.frames(limit=1):  # no frame: frames() raises EmptyVideoError
        pass
    return reader.info
