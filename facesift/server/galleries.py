"""The service's galleries: one folder each under ``<data_dir>/galleries/``, opened once and shared."""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from facesift.errors import GalleryError, InvalidArgumentError
from facesift.gallery import Gallery, open_gallery
from facesift.pipeline import Pipeline
from facesift.results import Serialisable
from facesift.server.keys import GALLERY_NAME

_SETTINGS = "settings.json"


class GalleryNotFoundError(GalleryError, KeyError):
    """No gallery of that name exists on this service."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class GalleryExistsError(GalleryError):
    """A gallery of that name already exists."""


@dataclass(frozen=True)
class GalleryInfo(Serialisable):
    """A gallery as the service lists it; ``keep_images`` decides whether enrolled photos are stored."""

    name: str
    keep_images: bool
    created_at: float


class Galleries:
    """Create, open (once), list and delete the galleries under ``root``; every gallery shares one pipeline."""

    def __init__(self, root: Path, backend: str, pipeline: Pipeline) -> None:
        self.root = root
        self.backend = backend
        self.pipeline = pipeline
        self._open: dict[str, Gallery] = {}
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def _folder(self, name: str) -> Path:
        if not GALLERY_NAME.match(name):
            raise GalleryNotFoundError(f"No gallery {name!r}: names are lower-case letters, digits, - and _")
        return self.root / name

    def _uri(self, name: str) -> str:
        return f"{self.backend}://{(self.root / name / 'gallery.db').resolve()}"

    def info(self, name: str) -> GalleryInfo:
        try:
            settings = json.loads((self._folder(name) / _SETTINGS).read_text())
        except FileNotFoundError:
            raise GalleryNotFoundError(f"No gallery {name!r}; create it first (POST /v1/galleries)") from None
        return GalleryInfo(name, bool(settings["keep_images"]), float(settings["created_at"]))

    def list(self) -> list[GalleryInfo]:
        return [self.info(path.parent.name) for path in sorted(self.root.glob(f"*/{_SETTINGS}"))]

    def create(self, name: str, *, keep_images: bool = False) -> GalleryInfo:
        if not GALLERY_NAME.match(name):
            raise InvalidArgumentError(f"Bad gallery name {name!r}: use 1-63 lower-case letters, digits, - and _")
        with self._lock:
            folder = self.root / name
            if (folder / _SETTINGS).exists():
                raise GalleryExistsError(f"A gallery named {name!r} already exists")
            folder.mkdir(parents=True, exist_ok=True)
            gallery = open_gallery(self._uri(name), pipeline=self.pipeline, model=self.pipeline.model)
            if keep_images and not gallery.supports_images:
                gallery.close()
                shutil.rmtree(folder)
                raise InvalidArgumentError(f"The {self.backend} gallery backend cannot keep images; create the gallery without them")
            self._open[name] = gallery
            (folder / _SETTINGS).write_text(json.dumps({"keep_images": keep_images, "created_at": time.time()}))
        return self.info(name)

    def get(self, name: str) -> tuple[Gallery, GalleryInfo]:
        info = self.info(name)
        with self._lock:
            if name not in self._open:
                self._open[name] = open_gallery(self._uri(name), pipeline=self.pipeline, model=self.pipeline.model)
            return self._open[name], info

    def delete(self, name: str) -> None:
        self.info(name)
        with self._lock:
            gallery = self._open.pop(name, None)
            if gallery is not None:
                gallery.close()
            shutil.rmtree(self.root / name)

    def close(self) -> None:
        with self._lock:
            for gallery in self._open.values():
                gallery.close()
            self._open.clear()
