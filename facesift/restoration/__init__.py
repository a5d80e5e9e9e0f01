"""Optional super-resolution of small faces before embedding: one file per backend."""

from facesift.restoration import bicubic, facesr, realesrgan  # noqa: F401  (importing registers the backends)
from facesift.restoration.base import Restorer, available_restorers, create_restorer, native_size, register_restorer

__all__ = ["Restorer", "available_restorers", "create_restorer", "native_size", "register_restorer"]
