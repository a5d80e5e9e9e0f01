"""Typed errors: every failure a caller can act on has its own class and a message that says what to do."""

from __future__ import annotations


class FacesiftError(Exception):
    """Base class of every error facesift raises on purpose."""


class ImageError(FacesiftError, ValueError):
    """The input could not be turned into an image."""


class NotAnImageError(ImageError):
    """The bytes are not in any image format we can decode."""


class TruncatedImageError(ImageError):
    """The file starts like an image but its data ends early."""


class EmptyImageError(ImageError):
    """Zero bytes, or an image with zero width or height."""


class ImageTooLargeError(ImageError):
    """More pixels than the configured limit (guards against decompression bombs)."""


class UnsupportedImageError(ImageError):
    """A decodable image whose pixel mode or array layout we do not handle."""


class ModelError(FacesiftError, RuntimeError):
    """A model's weight file is missing, corrupt or could not be prepared."""


class ModelNotInstalledError(ModelError):
    """The package that carries a model's weight file is not installed."""


class UnknownBackendError(FacesiftError, KeyError):
    """A detector or embedder name that no registered backend answers to."""

    def __str__(self) -> str:  # KeyError quotes its message; ours should read as a sentence
        return str(self.args[0]) if self.args else ""


class NoFaceError(FacesiftError):
    """No face was found where one was required."""


class InvalidArgumentError(FacesiftError, ValueError):
    """An argument a caller passed is out of range or contradicts another (a ValueError, as before)."""


class GalleryError(FacesiftError):
    """A gallery operation could not be done (bad URI, unreachable backend, inconsistent state)."""


class GalleryClosedError(GalleryError):
    """The gallery was closed (by another thread, or because it was deleted) while it was being used."""


class PersonNotFoundError(GalleryError, KeyError):
    """No person with that id is enrolled."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PersonExistsError(GalleryError):
    """A person with that id already exists."""


class InvalidPersonIdError(GalleryError, ValueError):
    """A person id breaks the one rule for ids (``facesift.gallery.PERSON_ID_RULE``)."""


class SampleNotFoundError(GalleryError, KeyError):
    """No face sample with that id exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetError(FacesiftError, ValueError):
    """An evaluation dataset, pairs file or attribute file is missing or malformed."""


class VideoError(FacesiftError, ValueError):
    """A video could not be read: not a video, cut short, without frames, or over a limit."""


class NotAVideoError(VideoError):
    """No decoder could open the input as a video (or the camera / stream could not be reached)."""


class TruncatedVideoError(VideoError):
    """The video ends well before the frame count its header declares."""


class EmptyVideoError(VideoError):
    """The video opened but has no frame to decode."""


class VideoTooLongError(VideoError):
    """The video runs longer than the configured limit."""


class ClosedError(FacesiftError, RuntimeError):
    """A pipeline or embedder was used after ``close()`` (or after its ``with`` block ended)."""
