"""Who appears in a video, and when: detect every few frames, track between detections, identify each track once.

Cost is what decides the design. Decoding a 360p frame costs about 1 ms, detecting on it about 15 ms and
embedding a face about 7 ms; a naive loop does all three on every frame and runs slower than real time. Here
the detector runs every ``stride`` frames (more rarely while nothing moves, at once after a scene cut), and a
face is embedded only while its track still needs it: to start or re-find a track, and until the track has
``min_good_frames`` usable faces, when it is identified once from their quality-weighted mean and stops being
embedded. The identity decision is the gallery's own (``Gallery.search_embedding``), at its operating point.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facesift.detection import create_detector
from facesift.gallery import Candidate, Gallery, open_gallery
from facesift.pipeline import Pipeline, get_pipeline
from facesift.results import Box, Serialisable, unserialised
from facesift.video.decode import VideoInput, VideoReader
from facesift.video.tracking import Observation, Tracker, TrackState

#: mean absolute change (grey levels, on a 64x36 thumbnail) between two consecutive frames that marks a scene cut
CUT_CHANGE = 30.0
#: change since the last detection below which the scene counts as still, and the stride may grow
STILL_CHANGE = 2.0
#: detections the low-confidence pass considers (ByteTrack's second threshold); they only extend tracks
LOW_SCORE = 0.3
#: the per-comparison false-match rate of the "same person" link between a lost track and a new face
LINK_FALSE_MATCH_RATE = 1e-2


@dataclass(frozen=True)
class TrackBox(Serialisable):
    """Where a track's face is on one frame; ``detected`` False: interpolated between two detections."""

    frame: int
    time: float
    box: Box
    detected: bool


@dataclass(frozen=True)
class VideoTrack(Serialisable):
    """One face followed through the video and who it is.

    ``decision`` is the gallery's ("match" or "unknown"), "no_usable_face" when no frame of the track was good
    enough to identify, or "not_searched" without a gallery. ``similarity`` is the best candidate's.
    """

    track_id: int
    person_id: str | None
    decision: str
    similarity: float | None
    candidates: tuple[Candidate, ...]
    first_frame: int
    last_frame: int
    first_seen: float
    last_seen: float
    best_frame: int
    best_quality: float
    frames_used: int
    identified_at: float | None
    boxes: tuple[TrackBox, ...]
    thumbnail: bytes | None = unserialised(default=None)


@dataclass(frozen=True)
class VideoAnalysis(Serialisable):
    """The timeline of a video: its tracks, the operating point they were decided at, and what it cost."""

    source: str
    fps: float
    frames: int
    width: int
    height: int
    duration: float
    frames_detected: int
    stride: int
    model: str
    threshold: float | None
    false_match_rate: float | None
    tracks: tuple[VideoTrack, ...]
    elapsed: float
    faces_embedded: int = 0
    annotated_video: str | None = None

    def people(self) -> dict[str, list[tuple[float, float]]]:
        """Each identified person's on-screen spans (first, last seen, seconds), in order."""
        spans: dict[str, list[tuple[float, float]]] = {}
        for track in sorted(self.tracks, key=lambda t: t.first_seen):
            if track.person_id is not None:
                spans.setdefault(track.person_id, []).append((track.first_seen, track.last_seen))
        return spans

    def summary(self) -> dict:
        """What a person reads first: counts, the speed, and who was seen when (no per-frame boxes)."""
        return {
            "source": self.source, "duration": round(self.duration, 2), "frames": self.frames,
            "frames_detected": self.frames_detected, "faces_embedded": self.faces_embedded, "tracks": len(self.tracks),
            "speed": round(self.duration / self.elapsed, 2) if self.elapsed else None,
            "people": {p: [[round(a, 2), round(b, 2)] for a, b in s] for p, s in self.people().items()},
        }


@dataclass(frozen=True)
class _Identity:
    decision: str
    person_id: str | None = None
    similarity: float | None = None
    candidates: tuple[Candidate, ...] = ()
    frames_used: int = 0


@dataclass
class _Best:
    quality: float
    frame: int
    crop: np.ndarray


class VideoAnalyser:
    """One pass over a video; ``analyze`` is the way to use it."""

    def __init__(
        self,
        pipeline: Pipeline,
        gallery: Gallery | None,
        *,
        stride: int,
        max_stride: int,
        min_good_frames: int,
        min_quality: float,
        max_gap_seconds: float,
        threshold: float | None,
        false_match_rate: float | None,
    ) -> None:
        if stride < 1 or max_stride < stride:
            raise ValueError(f"stride must be at least 1 and max_stride at least stride, got {stride} and {max_stride}")
        if min_good_frames < 1:
            raise ValueError(f"min_good_frames must be at least 1, got {min_good_frames}")
        self.pipeline = pipeline
        self.gallery = gallery
        self.stride, self.max_stride = stride, max_stride
        self.min_good_frames, self.min_quality = min_good_frames, min_quality
        self.max_gap_seconds = max_gap_seconds
        self.threshold, self.false_match_rate = threshold, false_match_rate
        self.detector = create_detector(pipeline.detector.name, score_threshold=LOW_SCORE)
        self.high_score = pipeline.detector.score_threshold
        self.link = pipeline.embedder.card.threshold_for(LINK_FALSE_MATCH_RATE)
        self.best: dict[int, _Best] = {}
        self.operating_point: tuple[float | None, float | None] = (threshold, false_match_rate)
        self.embedded = 0

    def run(
        self,
        reader: VideoReader,
        *,
        max_frames: int | None = None,
        annotate: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> VideoAnalysis:
        started = time.perf_counter()
        info = reader.info
        fps = info.fps
        self.tracker = Tracker(link_similarity=self.link, max_gap=max(1, round(self.max_gap_seconds * fps)), high_score=self.high_score)
        total = min(info.frame_count, max_frames) if max_frames and info.frame_count else (max_frames or info.frame_count)
        writer = None
        previous = at_detection = None
        current_stride = self.stride
        last_detected: int | None = None
        detected = decoded = 0
        for index, rgb in reader.frames(limit=max_frames):
            decoded += 1
            small = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (64, 36), interpolation=cv2.INTER_AREA).astype(np.float32)
            cut = previous is not None and float(np.abs(small - previous).mean()) > CUT_CHANGE
            previous = small
            if last_detected is None or cut or index - last_detected >= current_stride:
                changed = self._round(index, rgb, cut)
                detected += 1
                still = at_detection is not None and float(np.abs(small - at_detection).mean()) < STILL_CHANGE
                current_stride = min(2 * current_stride, self.max_stride) if still and not changed else self.stride
                at_detection, last_detected = small, index
            if annotate is not None:
                if writer is None:
                    writer = _writer(annotate, fps, rgb.shape[1], rgb.shape[0])
                writer.write(self._draw(rgb, index))
            if progress is not None:
                progress(decoded, total)
        if writer is not None:
            writer.release()
        tracks = tuple(self._finish(track, fps) for track in self.tracker.tracks if len(track.observations) >= 2)
        threshold, fmr = self.operating_point
        return VideoAnalysis(
            info.source, fps, decoded, info.width, info.height, decoded / fps, detected, self.stride, self.pipeline.model,
            threshold, fmr, tracks, time.perf_counter() - started, self.embedded, str(annotate) if annotate is not None else None,
        )

    # --- one detection round ----------------------------------------------------------------------------
    def _round(self, index: int, rgb: np.ndarray, cut: bool) -> bool:
        """Detect, associate, embed what needs it, identify tracks that are ready. True if a track started
        or a confident face went unmatched (the scene is not settled)."""
        faces = self.detector.detect(rgb)
        boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        scores = np.array([f.score for f in faces])
        matched, free = self.tracker.match_by_overlap(index, boxes, scores, cut=cut, recent=2 * self.max_stride)
        # embed what a decision needs: unclaimed confident faces (to re-find or start a track) and, for tracks
        # not yet identified, faces good enough to count; a collecting track's poor faces are only assessed
        collecting = [i for i, track in matched.items() if track.identity is None]
        assessed = dict(zip(collecting, self.pipeline.assess_faces(rgb, [faces[i] for i in collecting]), strict=True)) if collecting else {}
        unclaimed = [i for i in range(len(faces)) if i not in matched and scores[i] >= self.high_score]
        need = unclaimed + [i for i, item in assessed.items() if item.quality.score >= self.min_quality]
        embedded = dict(zip(need, self.pipeline.represent_faces(rgb, [faces[i] for i in need]), strict=True)) if need else {}
        self.embedded += len(need)
        unmatched = [i for i in range(len(faces)) if i not in matched]
        matched |= self.tracker.match_by_appearance(unmatched, {i: e.embedding for i, e in embedded.items()}, free)
        changed = False
        for i, face in enumerate(faces):
            track = matched.get(i)
            if track is None:
                if i not in embedded:
                    continue
                track, changed = self.tracker.start(), True
            item = embedded.get(i) or assessed.get(i)
            quality = item.quality.score if item is not None else None
            vector = embedded[i].embedding if i in embedded else None
            track.add(Observation(index, face.box, face.score, quality, vector))
            if quality is not None:
                self._keep_best(track, index, rgb, face.box, quality)
            if track.identity is None and self._good(track) >= self.min_good_frames:
                self._identify(track, index)
        return changed

    def _good(self, track: TrackState) -> int:
        return len(self._usable(track))

    def _usable(self, track: TrackState) -> list[Observation]:
        return [o for o in track.observations if o.vector is not None and o.quality >= self.min_quality]

    def _keep_best(self, track: TrackState, index: int, rgb: np.ndarray, box: Box, quality: float) -> None:
        best = self.best.get(track.track_id)
        if best is None or quality > best.quality:
            self.best[track.track_id] = _Best(quality, index, _crop(rgb, box))

    def _identify(self, track: TrackState, index: int | None) -> None:
        """Decide once, from the quality-weighted mean of the track's usable embeddings."""
        good = self._usable(track)
        track.identified_at = index
        if not good:
            track.identity = _Identity("no_usable_face")
            return
        mean = np.sum([o.quality * o.vector for o in good], axis=0)
        mean = mean / (np.linalg.norm(mean) or 1.0)
        if self.gallery is None:
            track.identity = _Identity("not_searched", frames_used=len(good))
            return
        found = self.gallery.search_embedding(mean, k=3, threshold=self.threshold, false_match_rate=self.false_match_rate)
        self.operating_point = (found.threshold, found.false_match_rate)
        best = found.candidates[0] if found.candidates else None
        person = best.person_id if best is not None and found.decision == "match" else None
        track.identity = _Identity(found.decision, person, best.similarity if best else None, found.candidates, len(good))

    # --- output -----------------------------------------------------------------------------------------
    def _finish(self, track: TrackState, fps: float) -> VideoTrack:
        if track.identity is None:
            self._identify(track, None)
        identity = track.identity
        points = track.observations
        boxes: list[TrackBox] = []
        for a, b in zip(points, points[1:] + [None], strict=True):
            boxes.append(TrackBox(a.frame, a.frame / fps, _round_box(a.box), True))
            if b is None or b.frame - a.frame > self.max_stride:
                continue
            for frame in range(a.frame + 1, b.frame):
                share = (frame - a.frame) / (b.frame - a.frame)
                box = tuple((1 - share) * np.asarray(a.box) + share * np.asarray(b.box))
                boxes.append(TrackBox(frame, frame / fps, _round_box(box), False))
        best = self.best.get(track.track_id)
        thumbnail = None
        if best is not None:
            ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(best.crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
            thumbnail = encoded.tobytes() if ok else None
        return VideoTrack(
            track.track_id, identity.person_id, identity.decision, identity.similarity, identity.candidates,
            points[0].frame, points[-1].frame, points[0].frame / fps, points[-1].frame / fps,
            best.frame if best else points[0].frame, best.quality if best else 0.0, identity.frames_used,
            track.identified_at / fps if track.identified_at is not None else None, tuple(boxes), thumbnail,
        )

    def _draw(self, rgb: np.ndarray, index: int) -> np.ndarray:
        """The frame with each live track's latest box and name (or track number while undecided), as BGR."""
        frame = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for track in self.tracker.tracks:
            if index - track.last.frame > self.max_stride:
                continue
            x1, y1, x2, y2 = (int(round(v)) for v in track.last.box)
            person = track.identity.person_id if track.identity else None
            colour = (80, 200, 80) if person else (60, 160, 255)
            label = person or (f"#{track.track_id} unknown" if track.identity else f"#{track.track_id}")
            cv2.rectangle(frame, (x1, y1), (x2, y2), colour, 2)
            cv2.putText(frame, label, (x1, max(12, y1 - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
        return frame


def _crop(rgb: np.ndarray, box: Box, margin: float = 0.25) -> np.ndarray:
    x1, y1, x2, y2 = box
    pad_x, pad_y = margin * (x2 - x1), margin * (y2 - y1)
    height, width = rgb.shape[:2]
    left, top = max(0, int(x1 - pad_x)), max(0, int(y1 - pad_y))
    right, bottom = min(width, int(x2 + pad_x) + 1), min(height, int(y2 + pad_y) + 1)
    return rgb[top:bottom, left:right].copy()


def _round_box(box) -> Box:
    return tuple(round(float(v), 1) for v in box)


def _writer(path: str | Path, fps: float, width: int, height: int) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"Could not write an MP4 to {path}")
    return writer


def analyze(
    clip: VideoInput,
    *,
    gallery: Gallery | str | Path | None = None,
    stride: int = 3,
    max_stride: int | None = None,
    min_good_frames: int = 5,
    min_quality: float = 0.1,
    max_gap_seconds: float = 1.0,
    threshold: float | None = None,
    false_match_rate: float | None = None,
    max_frames: int | None = None,
    max_seconds: float | None = None,
    annotate: str | Path | None = None,
    pipeline: Pipeline | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VideoAnalysis:
    """Find the faces in ``clip`` (a file, a camera index or a stream URL), follow them, and say who each is.

    ``gallery`` (a :class:`Gallery` or its URI) identifies each track once it has ``min_good_frames`` faces of
    quality at least ``min_quality`` (profile views and heavy blur score below 0.1), with the gallery's
    decision at its default operating point unless ``threshold``/``false_match_rate`` say otherwise. The
    detector runs every ``stride`` frames, up to ``max_stride`` (default 4x) while nothing moves; a track
    lost for up to ``max_gap_seconds`` is picked up again by its face. ``annotate`` writes an MP4 with boxes
    and names. Raises :class:`facesift.errors.VideoError` subclasses for unreadable input.
    """
    reader = VideoReader(clip, max_seconds=max_seconds)
    owned = isinstance(gallery, (str, Path))
    opened = open_gallery(gallery) if owned else gallery
    try:
        analyser = VideoAnalyser(
            pipeline or (opened.pipeline if opened is not None else get_pipeline()), opened,
            stride=stride, max_stride=max_stride or 4 * stride, min_good_frames=min_good_frames, min_quality=min_quality,
            max_gap_seconds=max_gap_seconds, threshold=threshold, false_match_rate=false_match_rate,
        )
        return analyser.run(reader, max_frames=max_frames, annotate=annotate, progress=progress)
    finally:
        reader.close()
        if owned and opened is not None:
            opened.close()
