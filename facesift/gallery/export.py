"""The portable gallery file: JSON lines (gzip if the name ends in .gz), the same for every backend.

The first line names the format, its version, the model and dims; then one line per person and one per sample,
embeddings as base64 of little-endian float32. Moving a gallery between backends is an export and an import.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from facesift.errors import GalleryError
from facesift.gallery.results import Person, Sample

#: Version of the export file format (JSON lines); bump it when a field changes meaning.
EXPORT_FORMAT = "facesift-gallery"
EXPORT_VERSION = 1
#: how many samples an import hands over at a time
IMPORT_BATCH = 1024


def write_export(
    path: Path, model: str, dims: int, counts: tuple[int, int], persons: Iterable[Person], samples: Iterable[Iterable[Sample]]
) -> int:
    """Write the header, then ``persons``, then ``samples`` (in batches). Returns the number of samples written."""
    written = 0
    with _open_text(path, "wt") as out:
        header = {
            "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "model": model, "dims": dims, "persons": counts[0], "samples": counts[1],
        }
        out.write(json.dumps(header) + "\n")
        for person in persons:
            record = {"type": "person", "person_id": person.person_id, "metadata": person.metadata, "created_at": person.created_at}
            out.write(json.dumps(record) + "\n")
        for batch in samples:
            for s in batch:
                record = {
                    "type": "sample", "sample_id": s.sample_id, "person_id": s.person_id, "model": s.model,
                    "quality": s.quality, "content_sha256": s.content_sha256, "created_at": s.created_at,
                    "embedding": base64.b64encode(np.asarray(s.embedding, "<f4").tobytes()).decode(),
                    "image": base64.b64encode(s.image).decode() if s.image is not None else None,
                }
                out.write(json.dumps(record) + "\n")
                written += 1
    return written


def read_export(path: Path, model: str, dims: int) -> Iterator[Person | list[Sample]]:
    """The people (one at a time) and samples (in batches of :data:`IMPORT_BATCH`) of an export, in file order,
    after checking that it holds ``dims``-d ``model`` embeddings. Anything unreadable is a :class:`GalleryError`."""
    try:
        yield from _read(path, model, dims)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise GalleryError(f"{path} is not a facesift gallery export (it is not readable text: {exc})") from None


def _read(path: Path, model: str, dims: int) -> Iterator[Person | list[Sample]]:
    with _open_text(path, "rt") as lines:
        header = _read_header(path, next(lines, ""))
        if header["model"] != model or int(header["dims"]) != dims:
            raise GalleryError(f"{path} holds {header['dims']}-d {header['model']!r} embeddings; this gallery holds {dims}-d {model!r}")
        pending: list[Sample] = []
        for number, line in enumerate(lines, 2):
            record = _parse_record(path, number, line)
            if record is None:
                continue
            if record["type"] == "person":
                yield Person(record["person_id"], record.get("metadata") or {}, 0, float(record.get("created_at") or time.time()))
                continue
            embedding = np.frombuffer(base64.b64decode(record["embedding"]), "<f4").astype(np.float32)
            if embedding.shape != (dims,):
                raise GalleryError(f"{path} line {number}: embedding has {embedding.size} values, expected {dims}")
            image = base64.b64decode(record["image"]) if record.get("image") else None
            pending.append(Sample(record["sample_id"], record["person_id"], embedding, record["model"], float(record["quality"]),
                                  record["content_sha256"], float(record["created_at"]), image))
            if len(pending) >= IMPORT_BATCH:
                yield pending
                pending = []
        yield pending


def _open_text(path: Path, mode: str) -> IO[str]:
    return gzip.open(path, mode, encoding="utf-8") if path.suffix == ".gz" else open(path, mode, encoding="utf-8")


def _read_header(path: Path, line: str) -> dict:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise GalleryError(f"{path} is not a facesift gallery export (its first line must name format {EXPORT_FORMAT!r})")
    if header.get("version") != EXPORT_VERSION:
        raise GalleryError(
            f"{path} is format version {header.get('version')}; this facesift reads version {EXPORT_VERSION}: upgrade facesift"
        )
    return header


def _parse_record(path: Path, number: int, line: str) -> dict | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
        if record["type"] not in ("person", "sample"):
            raise KeyError("type")
        return record
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise GalleryError(f"{path} line {number} is not a valid person or sample record ({exc})") from None
