"""The storage contract a gallery backend implements: people, samples and nearest-sample search, no decisions.

:class:`~facesift.gallery.Gallery` holds a store and decides everything (what enrolment accepts, how people are
ranked, which threshold decides); a store only keeps what it is given and finds what is near. The Gallery calls a
store from one thread at a time (it holds its lock), so a store need not be thread-safe for these methods.
A backend is one file whose store class registers itself for its URI schemes (``registry.register_backend``) and
is built as ``Store(uri, model=..., dims=..., **backend_options)``.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from facesift.gallery.results import Person, Sample, SampleInfo


class GalleryStore(Protocol):
    """Where one gallery's people and samples live (``model``'s ``dims``-d unit vectors)."""

    #: the name stats report ("sqlite", "milvus", "milvus-lite", ...)
    backend: str
    #: where it is, as opened
    uri: str
    model: str
    dims: int
    #: whether a sample's source image can be stored with it
    supports_images: bool

    def close(self) -> None: ...

    def add_persons(self, rows: Sequence[tuple[str, dict, float]]) -> list[Person]:
        """Add people (id, metadata, created_at) in one write; PersonExistsError if any id is taken."""

    def existing(self, person_ids: Sequence[str]) -> set[str]:
        """Which of these person ids are stored."""

    def get_person(self, person_id: str) -> Person | None: ...

    def list_persons(self, offset: int, limit: int, contains: str) -> list[Person]:
        """People in enrolment order, ``contains`` (any case) in their id; an empty ``contains`` keeps everyone."""

    def samples_of(self, person_id: str) -> list[SampleInfo]:
        """A person's samples, oldest first."""

    def metadata(self, person_ids: Iterable[str]) -> dict[str, dict]: ...

    def remove_person(self, person_id: str) -> int:
        """Delete a person and their samples; how many samples went."""

    def remove_sample(self, sample_id: str) -> None:
        """Delete one sample or raise SampleNotFoundError."""

    def sample_image(self, sample_id: str) -> bytes | None:
        """A sample's stored image (None if none was kept); SampleNotFoundError for an unknown id."""

    def has_sample(self, sample_id: str) -> bool: ...

    def add_samples(self, samples: Sequence[Sample]) -> None:
        """Store samples durably (all or none) and make them searchable before returning."""

    def find_by_hash(self, content_sha256: str) -> tuple[str, str] | None:
        """(sample_id, person_id) of a sample whose source image had this hash."""

    def nearest(self, vectors: np.ndarray, count: int) -> list[list[tuple[str, str, float]]]:
        """Per query row (unit vectors): up to ``count`` nearest samples as (sample_id, person_id, cosine), best first."""

    def person_vectors(self, person_ids: Sequence[str]) -> dict[str, tuple[list[str], np.ndarray]]:
        """Each named person's (sample ids, embedding matrix); people without samples may be left out."""

    def iter_samples(self, batch: int) -> Iterator[list[Sample]]:
        """Every sample, ``batch`` at a time."""

    def counts(self) -> tuple[int, int]:
        """(people, samples)."""

    def index_info(self) -> dict[str, Any]:
        """What the stats report of the vector index."""


#: the methods and attributes of the contract (the Gallery never passes these through to callers)
CONTRACT = frozenset(name for name in (*vars(GalleryStore), *GalleryStore.__annotations__) if not name.startswith("_"))
