"""Gallery URIs: which backend a URI names, and :func:`open_gallery`, the one way in.

A backend is one file whose :class:`~facesift.gallery.store.GalleryStore` registers itself for its URI schemes;
the built-in ones are imported on first use, so pymilvus is only needed for a Milvus URI.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from facesift.errors import GalleryError, UnknownBackendError
from facesift.gallery.gallery import Gallery, model_card
from facesift.gallery.store import GalleryStore
from facesift.pipeline import Pipeline
from facesift.registry import Registry

GALLERIES: Registry[GalleryStore] = Registry("gallery URI scheme")
#: schemes whose backend module is imported on first use (so pymilvus is only needed for Milvus)
_BUILTIN = {"sqlite": "facesift.gallery.sqlite", "milvus": "facesift.gallery.milvus", "milvus-lite": "facesift.gallery.milvus"}


def register_backend(*schemes: str) -> Callable[[type], type]:
    """Class decorator: open URIs with these schemes with this store (built as ``Store(uri, model=, dims=, **options)``)."""

    def decorate(backend: type) -> type:
        for scheme in schemes:
            GALLERIES.register(scheme)(backend)
        return backend

    return decorate


def split_uri(uri: str | Path) -> tuple[str, str]:
    """``scheme://rest`` -> (scheme, rest); a plain path is an SQLite file."""
    text = str(uri)
    if "://" not in text:
        return "sqlite", text
    scheme, rest = text.split("://", 1)
    return scheme.lower(), rest


def open_gallery(
    uri: str | Path,
    *,
    model: str = "sface",
    detector: str = "yunet",
    pipeline: Pipeline | None = None,
    aggregation: str = "best",
    **options: Any,
) -> Gallery:
    """Open (creating if needed) the gallery at ``uri``.

    ``sqlite:///path/g.db`` or a plain path: embedded SQLite + ANN index (the default);
    ``milvus-lite:///path/m.db``: embedded Milvus; ``milvus://host:19530/name``: a Milvus server or cluster.
    Options: ``model`` (embedder, default sface), ``detector`` (default yunet), ``pipeline`` (a ready
    :class:`Pipeline`), ``aggregation`` (``best`` or ``mean_top``: how a person's samples make one score); the
    other options are the backend's (SQLite: ``exact_below``, ``expansion_search``...; Milvus: ``token``...).
    """
    scheme, _ = split_uri(uri)
    if scheme not in GALLERIES.names() and scheme in _BUILTIN:
        try:
            importlib.import_module(_BUILTIN[scheme])
        except ImportError as exc:
            raise GalleryError(
                f"The {scheme!r} gallery backend needs a package that is not installed ({exc}); "
                "for Milvus run: pip install 'facesift[milvus]'"
            ) from exc
    if scheme not in GALLERIES.names():
        known = sorted(set(_BUILTIN) | set(GALLERIES.names()))
        raise UnknownBackendError(
            f"Unknown gallery URI scheme {scheme!r} in {str(uri)!r}; use one of {', '.join(known)}, or a plain path for SQLite"
        )
    card = model_card(model, pipeline, aggregation)  # bad options fail before the backend creates anything
    store = GALLERIES.create(scheme, uri=str(uri), model=model, dims=card.dims, **options)
    return Gallery(store, detector=detector, pipeline=pipeline, aggregation=aggregation)
