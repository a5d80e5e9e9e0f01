"""A photo collection grouped by person, kept in one JSON file that a user's corrections live in.

Incremental by design: faces already grouped keep their cluster; a new face joins the existing cluster whose
faces it matches on average at the cut similarity (the same test average-linkage clustering makes), and the new
faces that join none are clustered among themselves into new clusters. So a merge, a split, a name or a
confirmation is never undone by adding photos; ``rebuild`` re-clusters everything except confirmed clusters.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from facesift.cluster.core import DEFAULT_FALSE_MATCH_RATE, cluster_vectors, cut_similarity
from facesift.errors import FacesiftError
from facesift.pipeline import Pipeline, get_pipeline
from facesift.results import Box, Serialisable

STATE_FORMAT = "facesift-clusters"
STATE_VERSION = 1
#: faces below this quality score (profile views, heavy blur, tiny faces) are not clustered
DEFAULT_MIN_QUALITY = 0.1


class ClusterError(FacesiftError, ValueError):
    """A clustering state file is unreadable, or a correction names a cluster or face that is not there."""


@dataclass
class FaceRecord:
    face_id: str
    source: str
    box: Box
    quality: float
    cluster: int
    embedding: np.ndarray = field(repr=False)
    content_sha256: str = ""
    thumbnail: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Cluster(Serialisable):
    cluster_id: int
    name: str | None
    confirmed: bool
    size: int
    face_ids: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class AddReport(Serialisable):
    photos: int
    faces_added: int
    joined_existing: int
    new_clusters: int
    low_quality: int
    skipped_known: int
    failed: tuple[tuple[str, str], ...]


class Collection:
    """The faces of a collection, their clusters and the user's names for them; ``save()`` writes the file."""

    def __init__(self, path: str | Path | None, *, model: str = "sface", false_match_rate: float | None = None) -> None:
        from facesift.recognition import load_card

        self.path = Path(path) if path is not None else None
        self.model = model
        self.false_match_rate = DEFAULT_FALSE_MATCH_RATE if false_match_rate is None else false_match_rate
        self.similarity = cut_similarity(load_card(model), self.false_match_rate)
        self.faces: dict[str, FaceRecord] = {}
        self.meta: dict[int, dict] = {}  # cluster id -> {"name": str | None, "confirmed": bool}
        self._next_cluster = 0
        if self.path is not None and self.path.is_file():
            self._load()

    # --- reading and writing ----------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ClusterError(f"{self.path} is not a facesift clustering file ({exc})") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ClusterError(f"{self.path} is not a facesift clustering file (format {STATE_FORMAT!r} version {STATE_VERSION})")
        if state["model"] != self.model:
            raise ClusterError(f"{self.path} holds {state['model']!r} embeddings, not {self.model!r}")
        self.false_match_rate, self.similarity = state["false_match_rate"], state["similarity"]
        for record in state["faces"]:
            vector = np.frombuffer(base64.b64decode(record["embedding"]), "<f4").astype(np.float32)
            thumb = base64.b64decode(record["thumbnail"]) if record.get("thumbnail") else None
            self.faces[record["face_id"]] = FaceRecord(record["face_id"], record["source"], tuple(record["box"]), record["quality"],
                                                       record["cluster"], vector, record.get("content_sha256", ""), thumb)
        self.meta = {int(k): v for k, v in state["clusters"].items()}
        self._next_cluster = max([*self.meta, *(f.cluster for f in self.faces.values()), -1]) + 1

    def save(self) -> None:
        """Write the state atomically (a crash leaves the previous file)."""
        if self.path is None:
            return
        in_use = {f.cluster for f in self.faces.values()}
        state = {
            "format": STATE_FORMAT, "version": STATE_VERSION, "model": self.model, "saved_at": time.time(),
            "false_match_rate": self.false_match_rate, "similarity": self.similarity,
            "clusters": {str(k): v for k, v in self.meta.items() if k in in_use},
            "faces": [
                {"face_id": f.face_id, "source": f.source, "box": list(f.box), "quality": f.quality, "cluster": f.cluster,
                 "content_sha256": f.content_sha256, "embedding": base64.b64encode(np.asarray(f.embedding, "<f4").tobytes()).decode(),
                 "thumbnail": base64.b64encode(f.thumbnail).decode() if f.thumbnail else None}
                for f in self.faces.values()
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(state), encoding="utf-8")
        os.replace(partial, self.path)

    # --- looking ----------------------------------------------------------------------------------------
    def clusters(self) -> list[Cluster]:
        """Every cluster, largest first."""
        members: dict[int, list[FaceRecord]] = {}
        for face in self.faces.values():
            members.setdefault(face.cluster, []).append(face)
        out = []
        for cid, faces in members.items():
            meta = self.meta.get(cid, {})
            out.append(Cluster(cid, meta.get("name"), bool(meta.get("confirmed")), len(faces),
                               tuple(f.face_id for f in faces), tuple(dict.fromkeys(f.source for f in faces))))
        return sorted(out, key=lambda c: (-c.size, c.cluster_id))

    def cluster(self, cluster_id: int) -> Cluster:
        found = next((c for c in self.clusters() if c.cluster_id == cluster_id), None)
        if found is None:
            raise ClusterError(f"No cluster {cluster_id}; `facesift clusters show` lists them")
        return found

    # --- adding faces -----------------------------------------------------------------------------------
    def add_photos(
        self,
        photos: Sequence[str | Path],
        *,
        pipeline: Pipeline | None = None,
        min_quality: float = DEFAULT_MIN_QUALITY,
        thumbnails: bool = False,
        labels: Sequence[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> AddReport:
        """Every face of every photo not already in the collection; low-quality faces are left out.

        ``labels`` names each photo in the collection (default: its path), e.g. an upload's file name.
        """
        pipeline = pipeline or get_pipeline(embedder=self.model)
        labels = [str(p) for p in photos] if labels is None else list(labels)
        known = {f.source for f in self.faces.values()}
        todo = [(photo, label) for photo, label in zip(photos, labels, strict=True) if label not in known]
        results = pipeline.represent_batch([p for p, _ in todo], policy="all", progress=progress)
        fresh: list[FaceRecord] = []
        failed, low = [], 0
        for (photo, label), item in zip(todo, results, strict=True):
            if item.error:
                failed.append((label, f"{item.error_type}: {item.error}"))
                continue
            digest = hashlib.sha256(photo if isinstance(photo, bytes) else Path(photo).read_bytes()).hexdigest()
            pixels = None
            for k, face in enumerate(item.faces):
                if face.quality.score < min_quality:
                    low += 1
                    continue
                thumb = None
                if thumbnails:
                    from facesift.image import load_image

                    pixels = load_image(photo) if pixels is None else pixels
                    thumb = _thumbnail(pixels, face.face.box)
                fresh.append(FaceRecord(f"{label}#{k}", label, tuple(round(v, 1) for v in face.face.box), face.quality.score,
                                        -1, face.embedding, digest, thumb))
        joined, created = self._place(fresh)
        return AddReport(len(todo), len(fresh), joined, created, low, len(photos) - len(todo), tuple(failed))

    def add_embeddings(self, records: Iterable[FaceRecord]) -> AddReport:
        """Faces embedded elsewhere (a gallery's samples): placed the same way; ids already here are skipped."""
        fresh = [r for r in records if r.face_id not in self.faces]
        joined, created = self._place(fresh)
        return AddReport(len(fresh), len(fresh), joined, created, 0, 0, ())

    def _place(self, fresh: list[FaceRecord]) -> tuple[int, int]:
        """Join new faces to existing clusters where they match on average; cluster the rest among themselves."""
        if not fresh:
            return 0, 0
        vectors = np.stack([f.embedding for f in fresh]).astype(np.float32)
        joined = 0
        rest = list(range(len(fresh)))
        if self.faces:
            ids, sums, counts = self._cluster_sums()
            mean_similarity = (vectors @ sums.T) / counts[None, :]
            best = mean_similarity.argmax(1)
            rest = []
            for row, column in enumerate(best):
                if mean_similarity[row, column] >= self.similarity:
                    fresh[row].cluster = int(ids[column])
                    joined += 1
                else:
                    rest.append(row)
        labels = cluster_vectors(vectors[rest], similarity=self.similarity) if rest else np.zeros(0, int)
        mapping = {}
        for row, label in zip(rest, labels, strict=True):
            if label not in mapping:
                mapping[label] = self._new_cluster()
            fresh[row].cluster = mapping[label]
        for face in fresh:
            self.faces[face.face_id] = face
        return joined, len(mapping)

    def _cluster_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids = sorted({f.cluster for f in self.faces.values()})
        index = {cid: k for k, cid in enumerate(ids)}
        sums = np.zeros((len(ids), len(next(iter(self.faces.values())).embedding)), np.float32)
        counts = np.zeros(len(ids), np.float32)
        for face in self.faces.values():
            sums[index[face.cluster]] += face.embedding
            counts[index[face.cluster]] += 1
        return np.array(ids), sums, counts

    def _new_cluster(self) -> int:
        cid = self._next_cluster
        self._next_cluster += 1
        self.meta[cid] = {"name": None, "confirmed": False}
        return cid

    # --- corrections ------------------------------------------------------------------------------------
    def merge(self, into: int, *others: int) -> Cluster:
        """Put the faces of ``others`` into cluster ``into`` (which keeps its name; confirmed if any was)."""
        target = self.cluster(into)
        if not others:
            raise ClusterError("Name at least one cluster to merge into the first")
        for cid in others:
            self.cluster(cid)
            if cid == into:
                continue
            meta = self.meta.get(cid, {})
            for face in self.faces.values():
                if face.cluster == cid:
                    face.cluster = into
            self.meta.setdefault(into, {"name": None, "confirmed": False})
            self.meta[into]["name"] = self.meta[into].get("name") or meta.get("name")
            self.meta[into]["confirmed"] = bool(self.meta[into].get("confirmed") or meta.get("confirmed"))
        return self.cluster(target.cluster_id)

    def split(self, cluster_id: int, face_ids: Sequence[str] | None = None) -> list[Cluster]:
        """Move ``face_ids`` out of a cluster into a new one; without them, cut the cluster in two (average linkage)."""
        members = [f for f in self.faces.values() if f.cluster == cluster_id]
        if not members:
            raise ClusterError(f"No cluster {cluster_id}; `facesift clusters show` lists them")
        if face_ids:
            missing = [fid for fid in face_ids if fid not in {f.face_id for f in members}]
            if missing:
                raise ClusterError(f"Face {missing[0]!r} is not in cluster {cluster_id}")
            moving = set(face_ids)
        else:
            if len(members) < 2:
                raise ClusterError(f"Cluster {cluster_id} has one face: nothing to split")
            from sklearn.cluster import AgglomerativeClustering

            halves = AgglomerativeClustering(n_clusters=2, metric="cosine", linkage="average").fit_predict(
                np.stack([f.embedding for f in members]))
            moving = {f.face_id for f, half in zip(members, halves, strict=True) if half == 1}
        if len(moving) == len(members):
            raise ClusterError("A split must leave at least one face in the cluster")
        new = self._new_cluster()
        for face in members:
            if face.face_id in moving:
                face.cluster = new
        return [self.cluster(cluster_id), self.cluster(new)]

    def confirm(self, cluster_id: int, name: str) -> Cluster:
        """Name a cluster and mark it confirmed: it is a person, and ``rebuild`` leaves it alone."""
        self.cluster(cluster_id)
        if not name.strip():
            raise ClusterError("A confirmed cluster needs a name")
        self.meta[cluster_id] = {"name": name.strip(), "confirmed": True}
        return self.cluster(cluster_id)

    def rebuild(self) -> int:
        """Re-cluster every face outside confirmed clusters from scratch; returns how many clusters that made."""
        confirmed = {cid for cid, meta in self.meta.items() if meta.get("confirmed")}
        loose = [f for f in self.faces.values() if f.cluster not in confirmed]
        for face in loose:
            del self.faces[face.face_id]
        self.meta = {cid: meta for cid, meta in self.meta.items() if cid in confirmed}
        return self._place(loose)[1]

    # --- output -----------------------------------------------------------------------------------------
    def write_csv(self, path: str | Path) -> int:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["face_id", "source", "x1", "y1", "x2", "y2", "quality", "cluster", "name", "confirmed"])
            for cluster in self.clusters():
                for fid in cluster.face_ids:
                    face = self.faces[fid]
                    out.writerow(
                        [fid, face.source, *face.box, f"{face.quality:.3f}", cluster.cluster_id, cluster.name or "", cluster.confirmed]
                    )
        return len(self.faces)

    def write_links(self, folder: str | Path) -> int:
        """A folder per cluster (its name, or cluster-N) of symbolic links to the photos its faces are in."""
        folder = Path(folder)
        made = 0
        for cluster in self.clusters():
            target = folder / (_safe(cluster.name) if cluster.name else f"cluster-{cluster.cluster_id}")
            target.mkdir(parents=True, exist_ok=True)
            for k, source in enumerate(cluster.sources):
                link = target / f"{k:04d}-{Path(source).name}"
                if not link.exists() and Path(source).exists():
                    link.symlink_to(Path(source).resolve())
                    made += 1
        return made

    def into_gallery(self, gallery) -> dict[str, int]:
        """Enrol each confirmed cluster as a person (its name), from the embeddings already computed; a face
        enrolled before is not added twice. Returns samples added per person."""
        from facesift.gallery import Sample

        added: dict[str, int] = {}
        for cluster in self.clusters():
            if not cluster.confirmed:
                continue
            samples = []
            for fid in cluster.face_ids:
                face = self.faces[fid]
                sample_id = hashlib.sha256(f"{self.path}:{fid}".encode()).hexdigest()[:32]
                if not gallery.has_sample(sample_id):
                    samples.append(
                        Sample(sample_id, cluster.name, face.embedding, self.model, face.quality, face.content_sha256, time.time())
                    )
            added[cluster.name] = gallery.add_samples(samples) if samples else 0
        return added


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_ ." else "_" for ch in name).strip() or "unnamed"


def _thumbnail(pixels: np.ndarray, box: Box, size: int = 96) -> bytes:
    x1, y1, x2, y2 = box
    pad = 0.2 * max(x2 - x1, y2 - y1)
    h, w = pixels.shape[:2]
    crop = pixels[max(0, int(y1 - pad)) : min(h, int(y2 + pad)), max(0, int(x1 - pad)) : min(w, int(x2 + pad))]
    scale = size / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
