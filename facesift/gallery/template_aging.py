"""Template aging, an opt-in gallery policy: a person's samples follow them through the years.

When a profile-photo ``check`` says OWNER with a high margin (the owner's similarity reaches the card's
threshold at a strict false-match rate and beats everyone else, registered relatives included, by
``other_margin``) on a good-quality face, the photo is added to the person's samples. The policy adds at
most ``max_added`` samples per person; past that the oldest sample *it* added is evicted (the samples a
person was enrolled with are never touched). Every addition and eviction is written to a JSON-lines journal
with the embeddings involved, so :meth:`TemplateAging.undo` restores the gallery exactly as it was.

It works only through the gallery's public methods (``check``, ``add_samples``, ``remove_sample``), so any
backend can use it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from facesift.errors import GalleryError
from facesift.gallery.gallery import DUPLICATE_SIMILARITY, Gallery, pick_face
from facesift.gallery.results import CheckOutcome, CheckResult, Sample
from facesift.image import ImageInput, image_sha256
from facesift.results import Serialisable


@dataclass(frozen=True)
class AgingPolicy(Serialisable):
    """When a checked photo may join a person's samples."""

    #: the owner's similarity must reach the card's threshold at this (strict) false-match rate
    false_match_rate: float = 1e-4
    #: ... and beat the best other person (relatives included) by this much
    other_margin: float = 0.10
    #: the face's quality score (``FaceQuality.score``) must be at least this
    min_quality: float = 0.5
    #: samples the policy may add per person; the oldest of them is evicted beyond this
    max_added: int = 5

    def __post_init__(self) -> None:
        if self.max_added < 1:
            raise ValueError(f"max_added must be at least 1, got {self.max_added}")
        if not 0 <= self.min_quality <= 1:
            raise ValueError(f"min_quality must be in [0, 1], got {self.min_quality}")


@dataclass(frozen=True)
class AgingChange(Serialisable):
    """One addition (and the evictions it caused), as the journal records it."""

    change_id: str
    person_id: str
    sample_id: str
    similarity: float
    evicted: tuple[str, ...]
    created_at: float
    undone: bool = False


@dataclass(frozen=True)
class AgingResult(Serialisable):
    """The check, and whether the photo was added to the person's samples (and why not, if not)."""

    check: CheckResult
    change: AgingChange | None
    reason: str


def _encode(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, np.float32).tobytes()).decode()


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.float32).copy()


class TemplateAging:
    """The policy over one gallery, with its journal (``journal``: a JSON-lines file, created if missing)."""

    def __init__(self, gallery: Gallery, journal: str | Path, policy: AgingPolicy = AgingPolicy()) -> None:
        self.gallery, self.journal, self.policy = gallery, Path(journal), policy
        self._lock = threading.Lock()

    # --- the journal ---------------------------------------------------------------------------------
    def _records(self) -> list[dict]:
        if not self.journal.is_file():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line.strip()]

    def _append(self, record: dict) -> None:
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with open(self.journal, "a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()

    def _state(self) -> tuple[dict[str, dict], list[AgingChange]]:
        """(samples the policy added that are still in the gallery: id -> record, every change in order)."""
        live: dict[str, dict] = {}
        changes: dict[str, AgingChange] = {}
        for record in self._records():
            if record["op"] == "add":
                live[record["sample_id"]] = record
                for evicted in record["evicted"]:
                    live.pop(evicted, None)
                changes[record["change_id"]] = AgingChange(
                    record["change_id"], record["person_id"], record["sample_id"], record["similarity"],
                    tuple(record["evicted"]), record["created_at"])
            elif record["op"] == "undo":
                change = changes[record["change_id"]]
                live.pop(change.sample_id, None)
                for evicted in change.evicted:
                    live[evicted] = record["restored"][evicted]
                changes[change.change_id] = replace(change, undone=True)
        return live, list(changes.values())

    def history(self, person_id: str | None = None) -> list[AgingChange]:
        """Every change the policy made (to one person, if given), oldest first."""
        return [c for c in self._state()[1] if person_id is None or c.person_id == person_id]

    # --- the policy ----------------------------------------------------------------------------------
    def check(self, person_id: str, image: ImageInput) -> AgingResult:
        """``gallery.check`` and, when the result is a confident OWNER on a good face, add the photo as a sample."""
        image = image.read() if hasattr(image, "read") else image
        result = self.gallery.check(person_id, image)
        strict = self.gallery.card.threshold_for(self.policy.false_match_rate)
        needed = max(strict, result.threshold)
        if result.outcome is not CheckOutcome.OWNER:
            return AgingResult(result, None, f"not added: the check says {result.outcome.value}")
        if result.owner_similarity < needed:
            return AgingResult(result, None, f"not added: owner similarity {result.owner_similarity:.3f} < {needed:.3f} "
                               f"(false-match rate {self.policy.false_match_rate:g})")
        if result.other_similarity is not None and result.owner_similarity - result.other_similarity < self.policy.other_margin:
            return AgingResult(result, None, f"not added: {result.other_person!r} is within {self.policy.other_margin:.2f} "
                               f"({result.other_similarity:.3f} against {result.owner_similarity:.3f})")
        if result.quality is None or result.quality.score < self.policy.min_quality:
            return AgingResult(result, None, f"not added: quality below {self.policy.min_quality:.2f}")
        if result.owner_similarity >= DUPLICATE_SIMILARITY:
            return AgingResult(result, None, "not added: near-identical to a sample the person has")
        found = self.gallery.pipeline.represent_batch([image], policy="all", on_error="raise")[0]
        face, problem = pick_face(found.faces, found.image_size)
        if face is None:
            raise GalleryError(f"The photo checked as OWNER but embeds to no single face now: {problem}")
        return AgingResult(result, self._add(person_id, face.embedding, face.quality.score, image_sha256(image),
                                             result.owner_similarity), "added to the person's samples")

    def _add(self, person_id: str, vector: np.ndarray, quality: float, digest: str, similarity: float) -> AgingChange:
        with self._lock:
            live, _ = self._state()
            mine = sorted((r for r in live.values() if r["person_id"] == person_id), key=lambda r: r["created_at"])
            evict = mine[: max(0, len(mine) + 1 - self.policy.max_added)]
            sample = Sample(uuid.uuid4().hex, person_id, np.asarray(vector, np.float32), self.gallery.model, quality,
                            digest, time.time())
            change = AgingChange(uuid.uuid4().hex, person_id, sample.sample_id, float(similarity),
                                 tuple(r["sample_id"] for r in evict), sample.created_at)
            # journal first: a crash between the two leaves a record whose sample may be missing, which undo tolerates
            self._append({"op": "add", **change.to_dict(), "evicted": list(change.evicted), "embedding": _encode(vector),
                          "quality": quality, "content_sha256": digest})
            self.gallery.add_samples([sample], create=False)
            for record in evict:
                self.gallery.remove_sample(record["sample_id"])
            return change

    def undo(self, change_id: str) -> AgingChange:
        """Take an addition back: its sample leaves the gallery and the samples it evicted come back."""
        with self._lock:
            live, changes = self._state()
            change = next((c for c in changes if c.change_id == change_id), None)
            if change is None:
                raise GalleryError(f"No template-aging change {change_id!r} in {self.journal}")
            if change.undone:
                raise GalleryError(f"Change {change_id!r} is already undone")
            records = {r["sample_id"]: r for r in self._records() if r["op"] == "add"}
            later = [c for c in changes if c.created_at > change.created_at and not c.undone and change.sample_id in c.evicted]
            if later:
                raise GalleryError(f"Undo change {later[0].change_id!r} first: it evicted this change's sample")
            restored = {sid: records[sid] for sid in change.evicted}
            self._append({"op": "undo", "change_id": change_id, "created_at": time.time(), "restored": restored})
            if change.sample_id in live:
                self.gallery.remove_sample(change.sample_id)
            self.gallery.add_samples([
                Sample(sid, r["person_id"], _decode(r["embedding"]), self.gallery.model, r["quality"], r["content_sha256"],
                       r["created_at"]) for sid, r in restored.items()
            ], create=False)
            return replace(change, undone=True)
