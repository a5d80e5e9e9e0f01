"""Cross-resolution embedders we trained (``facesift train``): shipped inside the package, or trained on this machine.

Shipped: ``recognition/weights/<name>.onnx`` (weights stored in fp16, folded back to fp32 into the cache on first
use, sha256-checked like every weight file) with its card ``recognition/cards/<name>.json``; a fresh install has them.
Trained here: ``<cache>/trained/<name>.onnx`` + ``<name>.json``. A model trained here **overrides** the shipped one
of the same name (the user asked for it by training; delete the two files to go back), and `facesift models` says
which one is in use. Loaded by name like any backend; nothing is downloaded.

Input convention is SFace's (112x112 aligned RGB, 0-255, NCHW), since every model here starts from SFace.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx

from facesift.models import OWN_DISTRIBUTION, WeightFile, model_path, register_weights, trained_dir
from facesift.onnx_repair import decompose_prelu, fold_constants
from facesift.recognition.base import _PACKAGED_CARDS, PRESETS, ModelCard, ModelEmbedder, load_card
from facesift.runtime import open_session

#: how the shipped files store their weights (chosen by the resolution sweep, docs/low-resolution.md)
SHIPPED_PRECISION = "fp16"
_LOW_RESOLUTION_LICENCE = (
    "research use only: fine-tuned from SFace 2021dec (Apache-2.0, OpenCV Zoo) on CelebA photos "
    "(non-commercial research terms) and Pins photos (no licence stated; images belong to their owners)"
)
#: per model we ship: the licence its training photos impose, and the script that trains it from scratch
SHIPPED_ORIGINS: dict[str, tuple[str, str]] = {
    "sface-lowres": (_LOW_RESOLUTION_LICENCE, "scripts/train_lowres.sh"),
    "sface-tiny": (_LOW_RESOLUTION_LICENCE, "scripts/train_lowres.sh"),
}


def unpack_shipped(data: bytes) -> bytes:
    """Shipped int8/fp16 weights back to plain fp32 (onnxruntime would otherwise dequantise on every call), with
    PReLU rewritten as SFace's own file is (onnxruntime then fuses it: 10 instead of 20 ms a face, same vectors)."""
    return decompose_prelu(fold_constants(onnx.load_from_string(data))).SerializeToString()


def shipped_weights_path(name: str) -> str:
    return f"facesift/recognition/weights/{name}.onnx"


#: the cross-resolution models ``scripts/train_lowres.sh`` trains, in routing order
LOW_RESOLUTION_MODELS = ("sface-tiny", "sface-lowres")
#: sha256 of each shipped (compressed) file, as ``facesift train ship`` prints it. A model is shipped once its
#: file, its card and its line here are all in the package; until then the pipeline routes to none of them.
SHIPPED_SHA256: dict[str, str] = {
    "sface-lowres": "6c3bfd8edd363d3e18d86caeb786330dd054d5e83507b77df1ba31e5a8bb3a80",
    "sface-tiny": "fe0e2861497b7f4640246fb3870231d844204ae2f8e01756d5ab59183ac6e282",
}
SHIPPED: dict[str, WeightFile] = {
    name: register_weights(WeightFile(
        name=name, distribution=OWN_DISTRIBUTION, path_in_distribution=shipped_weights_path(name), sha256=sha256,
        install_hint="pip install --force-reinstall facesift", licence=SHIPPED_ORIGINS[name][0], repair=unpack_shipped, repair_version=2,
    ))
    for name, sha256 in SHIPPED_SHA256.items()
}


def _local(name: str) -> Path | None:
    """The model trained on this machine under ``name``, when both its files are there."""
    path = trained_dir() / f"{name}.onnx"
    return path if path.is_file() and path.with_suffix(".json").is_file() else None


def trained_embedders() -> list[str]:
    """Names of the trained models available: shipped ones and those trained here (ONNX file and card)."""
    folder = trained_dir()
    local = {p.stem for p in folder.glob("*.onnx") if _local(p.stem)} if folder.is_dir() else set()
    # a shipped model is one whose card is in the package; its weight file then must be there too (model_path says so)
    return sorted(local | {name for name in SHIPPED if (_PACKAGED_CARDS / f"{name}.json").is_file()})


def trained_origin(name: str) -> str:
    """``"trained here"`` (a local model, which overrides a shipped one) or ``"shipped"``."""
    return "trained here" if _local(name) else "shipped"


def trained_model_file(name: str) -> Path:
    """The ONNX file a trained model runs from: the one trained here, else the shipped one (checked, unpacked)."""
    return _local(name) or model_path(name)


def install_trained(onnx_file: Path, card: ModelCard) -> Path:
    """Copy a trained ONNX file and its card into the trained-models folder under ``card.name``."""
    folder = trained_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{card.name}.onnx"
    tmp = target.with_suffix(".onnx.tmp")
    tmp.write_bytes(Path(onnx_file).read_bytes())
    tmp.replace(target)
    (folder / f"{card.name}.json").write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    return target


def trained_fingerprint(name: str) -> str:
    """12 hex digits that change with a trained model's ONNX file or its card (which faces it takes, say)."""
    path = trained_model_file(name)
    stat = path.stat()
    weights = _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)
    card = json.dumps(load_card(name).to_dict(), sort_keys=True).encode()
    return hashlib.sha256(weights.encode() + card).hexdigest()[:12]


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime key the cache: a new file, a new hash
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def low_resolution_models(embedder: str) -> list[str]:
    """Names of the installed cross-resolution models for ``embedder``'s space, smallest routing limit first:
    a face goes to the first whose ``eye_distance_below`` it is under (a specialist for the tiniest faces,
    then a broader one), else to ``embedder`` itself."""
    cards = []
    for name in trained_embedders():
        card = load_card(name)
        if card.compatible_with == embedder and card.eye_distance_below > 0:
            cards.append((card.eye_distance_below, name))
    return [name for _, name in sorted(cards)]


def routing_by_default() -> bool:
    """Whether pipelines route small faces to the cross-resolution models unless told: yes, except where
    ``FACESIFT_LOW_RESOLUTION=0`` (a whole process, CLI or service, embedding with the plain embedder alone: how
    the README measures SFace alone with the shipped models installed)."""
    return os.environ.get("FACESIFT_LOW_RESOLUTION", "1").strip() != "0"


def installed_low_resolution(embedder: str, *, routing: bool | None = None) -> tuple[tuple[str, str], ...]:
    """(name, fingerprint) of each cross-resolution model installed now for ``embedder`` (a preset name or a
    model name), smallest limit first: what a pipeline created now with ``low_resolution=routing`` would route to
    (``None``: as :func:`routing_by_default` says)."""
    if not (routing_by_default() if routing is None else routing):
        return ()
    return tuple((name, trained_fingerprint(name)) for name in low_resolution_models(PRESETS.get(embedder, embedder)))


def low_resolution_embedders(embedder: str) -> "tuple[TrainedEmbedder, ...]":
    """The installed cross-resolution models for ``embedder``'s space, loaded, smallest limit first."""
    return tuple(TrainedEmbedder(name) for name in low_resolution_models(embedder))


class TrainedEmbedder(ModelEmbedder):
    """A trained ONNX embedder, found by name (trained here, else shipped)."""

    input_size = 112

    def __init__(self, name: str, **options) -> None:
        self.name = name
        super().__init__(**options)
        self.flip = options.get("flip", self.card.flip)  # the card says whether mirroring measured better
        self._session, self._input = open_session(trained_model_file(name))
        self.fingerprint = trained_fingerprint(name)  # of the file this session loaded

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        blob = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return self._session.run(None, {self._input: blob})[0]


def pack_trained(name: str, into: Path, *, precision: str = SHIPPED_PRECISION, training_data: str = "") -> tuple[Path, str]:
    """Write the model trained here under ``name`` as package data: ``into/weights/<name>.onnx`` with its weights
    stored in ``precision`` and ``into/cards/<name>.json`` naming its training data and licence. Returns the ONNX
    path and its sha256 (which :data:`SHIPPED` must carry for the file to load)."""
    from facesift.onnx_repair import store_weights

    if name not in SHIPPED_ORIGINS:
        raise ValueError(f"{name!r} has no licence and training script in SHIPPED_ORIGINS (facesift/recognition/trained.py)")
    licence, script = SHIPPED_ORIGINS[name]
    source = _local(name)
    if source is None:
        raise FileNotFoundError(f"No model {name!r} trained here ({trained_dir()}); train it first ({script})")
    data = store_weights(onnx.load(str(source)), precision).SerializeToString()
    target = into / "weights" / f"{name}.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    card = load_card(name)  # the card in effect: with the thresholds `facesift evaluate calibrate` wrote, if it ran
    shipped = ModelCard(**{
        **card.to_dict(),
        "licence": licence,
        "source": f"shipped with facesift, weights stored {precision} (unpacked to fp32 on first use); "
                  f"reproduce with {script} ({card.source})",
        "training_data": training_data or card.training_data,
    })
    (into / "cards").mkdir(parents=True, exist_ok=True)
    (into / "cards" / f"{name}.json").write_text(json.dumps(shipped.to_dict(), indent=2) + "\n")
    return target, hashlib.sha256(data).hexdigest()
