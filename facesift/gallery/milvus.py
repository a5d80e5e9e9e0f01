"""Distributed gallery on Milvus (``pymilvus``): the same contract, for galleries past one machine.

``milvus-lite:///path/m.db`` runs embedded Milvus Lite (tests, laptops); ``milvus://host:19530/name``
talks to a Milvus server or cluster (``name`` prefixes the two collections, default ``facesift``; pass
``token="user:password"`` for an authenticated one). Two collections: ``<name>_samples`` (the vectors,
inner-product index) and ``<name>_persons`` (Milvus needs a vector field in every collection, so people
carry a constant 2-d placeholder vector). Collections use Strong consistency, so a search sees every
acknowledged write. Milvus has no binary field type: ``keep_images`` is refused here.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from facesift.errors import GalleryError, PersonExistsError, SampleNotFoundError
from facesift.gallery.registry import register_backend, split_uri
from facesift.gallery.results import Person, Sample, SampleInfo

_MAX_LIMIT = 16_384  # Milvus's cap on limit (+ offset) of one query or search


def _literal(value: Any) -> str:
    """A value as a Milvus filter literal (JSON's escaping is what Milvus's string literals accept)."""
    return json.dumps(value)


@register_backend("milvus", "milvus-lite")
class MilvusStore:
    """Milvus or Milvus Lite (a :class:`~facesift.gallery.store.GalleryStore`)."""

    backend = "milvus"
    supports_images = False

    def __init__(self, uri: str, *, model: str, dims: int, token: str = "", index_type: str = "AUTOINDEX") -> None:
        self.uri, self.model, self.dims = uri, model, dims
        scheme, rest = split_uri(uri)
        if scheme == "milvus-lite":
            if not rest.endswith(".db"):
                raise GalleryError(f"A Milvus Lite gallery is a file ending in .db, e.g. milvus-lite:///data/gallery.db (got {rest!r})")
            address, name = rest, "facesift"
        else:
            host, _, name = rest.partition("/")
            address, name = f"http://{host}", name or "facesift"
        self.backend = scheme
        self._samples, self._persons = f"{name}_samples", f"{name}_persons"
        try:
            self._client = MilvusClient(address, token=token) if token else MilvusClient(address)
            self._create_collections(index_type)
        except MilvusException as exc:
            raise GalleryError(f"Could not open the Milvus gallery at {uri}: {exc}") from exc

    def _create_collections(self, index_type: str) -> None:
        client = self._client
        if not client.has_collection(self._samples):
            schema = client.create_schema(auto_id=False)
            schema.add_field("sample_id", DataType.VARCHAR, is_primary=True, max_length=64)
            schema.add_field("person_id", DataType.VARCHAR, max_length=256)
            schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.dims)
            schema.add_field("model", DataType.VARCHAR, max_length=64)
            schema.add_field("quality", DataType.DOUBLE)
            schema.add_field("content_sha256", DataType.VARCHAR, max_length=64)
            schema.add_field("created_at", DataType.DOUBLE)
            index = client.prepare_index_params()
            index.add_index("embedding", index_type=index_type, metric_type="IP")
            client.create_collection(self._samples, schema=schema, index_params=index, consistency_level="Strong")
        else:
            dims = next(f["params"]["dim"] for f in client.describe_collection(self._samples)["fields"] if f["name"] == "embedding")
            if int(dims) != self.dims:
                raise GalleryError(
                    f"The Milvus collection {self._samples} holds {dims}-d embeddings, not {self.dims}-d {self.model!r} ones"
                )
        if not client.has_collection(self._persons):
            schema = client.create_schema(auto_id=False)
            schema.add_field("person_id", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("metadata", DataType.VARCHAR, max_length=65_535)
            schema.add_field("created_at", DataType.DOUBLE)
            schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=2)
            index = client.prepare_index_params()
            index.add_index("placeholder", index_type="AUTOINDEX", metric_type="L2")
            client.create_collection(self._persons, schema=schema, index_params=index, consistency_level="Strong")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- helpers -------------------------------------------------------------------------------------
    def _query(self, collection: str, filter: str, fields: list[str], limit: int = _MAX_LIMIT) -> list[dict]:
        return list(self._client.query(collection, filter=filter, output_fields=fields, limit=limit))

    def _count(self, collection: str, filter: str = "") -> int:
        return int(self._client.query(collection, filter=filter, output_fields=["count(*)"])[0]["count(*)"])

    def _sample_count(self, person_id: str) -> int:
        return self._count(self._samples, f"person_id == {_literal(person_id)}")

    def _person(self, row: dict) -> Person:
        return Person(row["person_id"], json.loads(row["metadata"]), self._sample_count(row["person_id"]), float(row["created_at"]))

    # --- storage primitives --------------------------------------------------------------------------
    def add_persons(self, rows: Sequence[tuple[str, dict, float]]) -> list[Person]:
        taken = self.existing([pid for pid, _, _ in rows])
        if taken:
            raise PersonExistsError(f"A person {sorted(taken)[0]!r} already exists; enrol more samples with enroll(), or remove() first")
        records = [{"person_id": pid, "metadata": json.dumps(meta), "created_at": created, "placeholder": [0.0, 0.0]}
                   for pid, meta, created in rows]
        if any(len(r["metadata"]) > 65_535 for r in records):
            raise GalleryError("Person metadata is limited to 64 KB of JSON on Milvus")
        for start in range(0, len(records), 5000):
            self._client.insert(self._persons, records[start : start + 5000])
        return [Person(pid, meta, 0, created) for pid, meta, created in rows]

    def existing(self, person_ids: Sequence[str]) -> set[str]:
        ids = list(person_ids)
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            found.update(r["person_id"] for r in self._query(self._persons, f"person_id in {_literal(chunk)}", ["person_id"], len(chunk)))
        return found

    def get_person(self, person_id: str) -> Person | None:
        rows = self._query(self._persons, f"person_id == {_literal(person_id)}", ["person_id", "metadata", "created_at"], 1)
        return self._person(rows[0]) if rows else None

    def list_persons(self, offset: int, limit: int, contains: str) -> list[Person]:
        # Milvus caps offset + limit; ordering by id keeps pages stable across calls
        rows = self._query(self._persons, "", ["person_id", "metadata", "created_at"], _MAX_LIMIT)
        if len(rows) == _MAX_LIMIT:
            rows = [r for batch in self._iterate(self._persons, ["person_id", "metadata", "created_at"], 4096) for r in batch]
        rows.sort(key=lambda r: (r["created_at"], r["person_id"]))
        if contains:
            rows = [r for r in rows if contains.lower() in r["person_id"].lower()]
        return [self._person(row) for row in rows[offset : offset + limit]]

    def samples_of(self, person_id: str) -> list[SampleInfo]:
        rows = self._query(self._samples, f"person_id == {_literal(person_id)}", ["sample_id", "quality", "created_at"])
        rows.sort(key=lambda r: (r["created_at"], r["sample_id"]))
        return [SampleInfo(r["sample_id"], person_id, float(r["quality"]), float(r["created_at"]), False) for r in rows]

    def metadata(self, person_ids: Iterable[str]) -> dict[str, dict]:
        ids = list(person_ids)
        rows = self._query(self._persons, f"person_id in {_literal(ids)}", ["person_id", "metadata"], len(ids))
        return {row["person_id"]: json.loads(row["metadata"]) for row in rows}

    def remove_person(self, person_id: str) -> int:
        removed = self._sample_count(person_id)
        self._client.delete(self._samples, filter=f"person_id == {_literal(person_id)}")
        self._client.delete(self._persons, filter=f"person_id == {_literal(person_id)}")
        return removed

    def remove_sample(self, sample_id: str) -> None:
        if not self.has_sample(sample_id):
            raise SampleNotFoundError(f"No sample {sample_id!r} in the gallery")
        self._client.delete(self._samples, ids=[sample_id])

    def sample_image(self, sample_id: str) -> bytes | None:
        if not self.has_sample(sample_id):
            raise SampleNotFoundError(f"No sample {sample_id!r} in the gallery")
        return None

    def has_sample(self, sample_id: str) -> bool:
        return bool(self._client.get(self._samples, ids=[sample_id], output_fields=["sample_id"]))

    def add_samples(self, samples: Sequence[Sample]) -> None:
        if any(s.image is not None for s in samples):
            raise GalleryError("The Milvus backend does not store images (no binary field type); enrol with keep_images=False")
        rows = [
            {
                "sample_id": s.sample_id, "person_id": s.person_id, "embedding": np.asarray(s.embedding, np.float32),
                "model": s.model, "quality": float(s.quality), "content_sha256": s.content_sha256, "created_at": float(s.created_at),
            }
            for s in samples
        ]
        for start in range(0, len(rows), 5000):
            self._client.insert(self._samples, rows[start : start + 5000])

    def find_by_hash(self, content_sha256: str) -> tuple[str, str] | None:
        rows = self._query(self._samples, f"content_sha256 == {_literal(content_sha256)}", ["sample_id", "person_id"], 1)
        return (rows[0]["sample_id"], rows[0]["person_id"]) if rows else None

    def nearest(self, vectors: np.ndarray, count: int) -> list[list[tuple[str, str, float]]]:
        hits = self._client.search(
            self._samples, data=[v for v in np.asarray(vectors, np.float32)], limit=min(count, _MAX_LIMIT),
            output_fields=["person_id"], search_params={"metric_type": "IP"},
        )
        return [[(h["sample_id"], h["entity"]["person_id"], float(h["distance"])) for h in row] for row in hits]

    def person_vectors(self, person_ids: Sequence[str]) -> dict[str, tuple[list[str], np.ndarray]]:
        rows = self._query(self._samples, f"person_id in {_literal(list(person_ids))}", ["sample_id", "person_id", "embedding"])
        grouped: dict[str, tuple[list[str], list]] = {}
        for row in rows:
            entry = grouped.setdefault(row["person_id"], ([], []))
            entry[0].append(row["sample_id"])
            entry[1].append(row["embedding"])
        return {pid: (ids, np.asarray(vecs, dtype=np.float32)) for pid, (ids, vecs) in grouped.items()}

    def _iterate(self, collection: str, fields: list[str], batch: int) -> Iterator[list[dict]]:
        iterator = self._client.query_iterator(collection, batch_size=batch, filter="", output_fields=fields)
        try:
            while rows := iterator.next():
                yield rows
        finally:
            iterator.close()

    def iter_samples(self, batch: int) -> Iterator[list[Sample]]:
        fields = ["sample_id", "person_id", "embedding", "model", "quality", "content_sha256", "created_at"]
        for rows in self._iterate(self._samples, fields, batch):
            yield [
                Sample(r["sample_id"], r["person_id"], np.asarray(r["embedding"], np.float32), r["model"], r["quality"],
                       r["content_sha256"], r["created_at"])
                for r in rows
            ]

    def counts(self) -> tuple[int, int]:
        return self._count(self._persons), self._count(self._samples)

    def index_info(self) -> dict[str, Any]:
        info = self._client.describe_index(self._samples, "embedding")
        return {"kind": f"Milvus {info.get('index_type')} ({info.get('metric_type')})", "collections": [self._samples, self._persons]}
