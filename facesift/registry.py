"""Name -> backend registries, so detectors and embedders plug in with one decorator and one file each."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Generic, TypeVar

from facesift.errors import UnknownBackendError

T = TypeVar("T")


class Registry(Generic[T]):
    """Factories of one kind of backend (``kind`` names it in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: make a backend class or factory available under ``name``."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return decorate

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, **options) -> T:
        try:
            factory = self._factories[name]
        except KeyError:
            raise UnknownBackendError(f"Unknown {self.kind} {name!r}; available: {', '.join(self.names())}") from None
        return factory(**options)


def user_dir(override_variable: str, xdg_variable: str, xdg_default: str, *parts: str) -> Path:
    """A per-user folder: ``$override_variable`` if set, else under the XDG base folder."""
    override = os.environ.get(override_variable)
    if override:
        return Path(override)
    base = os.environ.get(xdg_variable) or os.path.join(os.path.expanduser("~"), xdg_default)
    return Path(base, *parts)
