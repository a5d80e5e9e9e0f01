"""Weight files that ship inside installed packages: find them, check them, repair them once, cache the result.

Nothing here downloads anything. A model is a file inside a pip package; when the package is missing the
error names the pip command that installs it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from facesift.errors import ModelError, ModelNotInstalledError
from facesift.registry import user_dir

#: A repair turns the verified source bytes into the bytes we actually run.
Repair = Callable[[bytes], bytes]


@dataclass(frozen=True)
class WeightFile:
    """One weight file inside one pip distribution."""

    name: str
    distribution: str
    path_in_distribution: str
    sha256: str
    install_hint: str
    licence: str
    repair: Repair | None = None
    repair_version: int = 1
    suffix: str = ".onnx"


_REGISTRY: dict[str, WeightFile] = {}
_RESOLVED: dict[str, Path] = {}
_LOCK = threading.Lock()


def register_weights(weights: WeightFile) -> WeightFile:
    """Make a weight file known by name (backends call this at import time)."""
    _REGISTRY[weights.name] = weights
    return weights


def registered_weights() -> dict[str, WeightFile]:
    return dict(_REGISTRY)


def cache_dir() -> Path:
    """Where repaired models live: ``$FACESIFT_CACHE_DIR``, else the user's cache folder."""
    return user_dir("FACESIFT_CACHE_DIR", "XDG_CACHE_HOME", ".cache", "facesift")


def trained_dir() -> Path:
    """Where models trained on this machine live (``facesift train`` writes ``<name>.onnx`` + ``<name>.json`` here)."""
    return cache_dir() / "trained"


def trained_model_path(name: str) -> Path:
    """The ONNX file of a locally trained model, or an error that says how to produce it."""
    path = trained_dir() / f"{name}.onnx"
    if not path.is_file():
        raise ModelNotInstalledError(
            f"No trained model {name!r} in {trained_dir()}; train it with `python -m facesift train` "
            "(see docs/low-resolution.md) or set FACESIFT_CACHE_DIR to where it lives"
        )
    return path


#: weight files facesift itself ships (package data) are found beside this module, editable install or not
OWN_DISTRIBUTION = "facesift"


def locate_source(weights: WeightFile) -> Path:
    """The weight file inside its installed package, or an error naming the pip command that installs it."""
    if weights.distribution == OWN_DISTRIBUTION:
        path = Path(__file__).parent.parent / weights.path_in_distribution
        if not path.is_file():
            raise ModelNotInstalledError(f"facesift's own model file {path} is missing; reinstall with: {weights.install_hint}")
        return path
    try:
        dist = importlib.metadata.distribution(weights.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelNotInstalledError(
            f"Model {weights.name!r} needs the package {weights.distribution!r}, which is not installed. "
            f"Install it with: {weights.install_hint}"
        ) from exc
    path = Path(str(dist.locate_file(weights.path_in_distribution)))
    if not path.is_file():
        raise ModelNotInstalledError(
            f"Package {weights.distribution!r} is installed but lacks {weights.path_in_distribution}; "
            f"reinstall it with: {weights.install_hint} --force-reinstall"
        )
    return path


def model_path(name: str) -> Path:
    """Path of the ready-to-run file for ``name``: verified, repaired and cached on first use."""
    with _LOCK:
        if name in _RESOLVED and _RESOLVED[name].is_file():
            return _RESOLVED[name]
        try:
            weights = _REGISTRY[name]
        except KeyError:
            raise ModelError(f"No weight file is registered as {name!r}; known: {sorted(_REGISTRY)}") from None
        path = _prepare(weights)
        _RESOLVED[name] = path
        return path


def _prepare(weights: WeightFile) -> Path:
    source = locate_source(weights)
    if weights.repair is None:
        _verify(weights, source.read_bytes(), source)
        return source
    target = cache_dir() / f"{weights.name}-{weights.sha256[:12]}-r{weights.repair_version}{weights.suffix}"
    if target.is_file():
        return target
    data = source.read_bytes()
    _verify(weights, data, source)
    try:
        repaired = weights.repair(data)
    except Exception as exc:  # a repair failing is a model problem, whatever the library raised
        raise ModelError(f"Could not prepare model {weights.name!r} from {source}: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(repaired)
    os.replace(tmp, target)  # atomic: a concurrent process sees the old state or the whole file
    return target


def _verify(weights: WeightFile, data: bytes, source: Path) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != weights.sha256:
        raise ModelError(
            f"{source} does not match the expected checksum of model {weights.name!r} "
            f"(sha256 {digest[:16]}..., expected {weights.sha256[:16]}...). The package may be a different "
            f"version or corrupt; reinstall it with: {weights.install_hint} --force-reinstall"
        )
