"""Faces followed from detection to detection, ByteTrack-style, with the face embedding as a second cue.

Each detection round: (1) confident detections are matched to the tracks seen recently by box overlap
(IoU with the box each track is predicted at, Hungarian assignment); (2) what is left, the unmatched
detections and the tracks lost for up to ``max_gap`` seconds, is matched by embedding similarity (the
calibrated same-person threshold of the model card, so a person who turned away, was hidden or was cut away
from keeps their track); (3) low-confidence detections (ByteTrack's second pass) only extend tracks that
are still unmatched, by overlap. Confident detections nobody claimed start new tracks. After a scene cut
boxes say nothing about who is who, so only step (2) runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from facesift.results import Box


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (n, 4) with every box in ``b`` (m, 4)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _assign(score: np.ndarray, minimum: float) -> list[tuple[int, int]]:
    """Row-column pairs of the best one-to-one assignment whose score reaches ``minimum``."""
    if not score.size:
        return []
    rows, cols = linear_sum_assignment(-score)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if score[r, c] >= minimum]


@dataclass
class Observation:
    """A track's face on one detection frame; ``quality`` and ``vector`` only when it was embedded."""

    frame: int
    box: Box
    score: float
    quality: float | None = None
    vector: np.ndarray | None = field(default=None, repr=False)


@dataclass
class TrackState:
    """A track while the video runs: its observations, its appearance and, once decided, its identity."""

    track_id: int
    observations: list[Observation] = field(default_factory=list)
    appearance: np.ndarray | None = field(default=None, repr=False)
    identity: Any = None  # set once, by the analyser
    identified_at: int | None = None

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    def predicted_box(self, frame: int) -> np.ndarray:
        """Where the face should be at ``frame``: its last box moved at its recent speed (at most a second ahead)."""
        box = np.asarray(self.last.box, dtype=np.float64)
        if len(self.observations) < 2:
            return box
        previous = self.observations[-2]
        span = self.last.frame - previous.frame
        if span <= 0:
            return box
        velocity = (box - np.asarray(previous.box)) / span
        return box + velocity * min(frame - self.last.frame, 30)

    def add(self, observation: Observation) -> None:
        if observation.vector is not None:
            weight = max(observation.quality or 0.0, 1e-3)
            mixed = observation.vector * weight + (self.appearance if self.appearance is not None else 0.0)
            self.appearance = mixed  # an unnormalised, quality-weighted running sum: its direction is what counts
        self.observations.append(observation)

    def similarity(self, vector: np.ndarray) -> float:
        if self.appearance is None:
            return -1.0
        return float(self.appearance @ vector / (np.linalg.norm(self.appearance) or 1.0))


class Tracker:
    """Associates each detection round's faces with tracks. ``link_similarity`` is the cosine at which two
    faces are taken for one person (from the model card), ``max_gap`` how many frames a lost track waits."""

    def __init__(self, *, link_similarity: float, max_gap: int, high_score: float, min_iou: float = 0.3) -> None:
        self.link_similarity = link_similarity
        self.max_gap = max_gap
        self.high_score = high_score
        self.min_iou = min_iou
        self.tracks: list[TrackState] = []
        self._next_id = 1

    def alive(self, frame: int) -> list[TrackState]:
        return [t for t in self.tracks if frame - t.last.frame <= self.max_gap]

    def match_by_overlap(
        self, frame: int, boxes: np.ndarray, scores: np.ndarray, *, cut: bool, recent: int
    ) -> tuple[dict[int, TrackState], list[TrackState]]:
        """Steps (1) and (3): detection index -> track, by IoU; and the tracks left for step (2)."""
        candidates = self.alive(frame)
        if cut:
            return {}, candidates
        matched: dict[int, TrackState] = {}
        for confident in (True, False):
            free = [t for t in candidates if t not in matched.values() and frame - t.last.frame <= recent]
            rows = [i for i in range(len(boxes)) if i not in matched and (scores[i] >= self.high_score) == confident]
            if not free or not rows:
                continue
            overlap = iou_matrix(boxes[rows], np.stack([t.predicted_box(frame) for t in free]))
            for r, c in _assign(overlap, self.min_iou if confident else max(self.min_iou, 0.5)):
                matched[rows[r]] = free[c]
        return matched, [t for t in candidates if t not in matched.values()]

    def match_by_appearance(
        self, indices: list[int], vectors: dict[int, np.ndarray], free: list[TrackState]
    ) -> dict[int, TrackState]:
        """Step (2): unmatched detections -> lost or unmatched tracks, by embedding similarity."""
        rows = [i for i in indices if i in vectors]
        free = [t for t in free if t.appearance is not None]
        if not rows or not free:
            return {}
        similarity = np.array([[t.similarity(vectors[i]) for t in free] for i in rows])
        return {rows[r]: free[c] for r, c in _assign(similarity, self.link_similarity)}

    def start(self) -> TrackState:
        track = TrackState(self._next_id)
        self._next_id += 1
        self.tracks.append(track)
        return track
