"""The shipped analysis heads: small ONNX files in ``facesift/analysis/models`` with one card, ``heads.json``.

Each head reads one kind of input (``input`` in its card): ``embedding`` (the face's 128-d SFace vector),
``trunk`` (:func:`facesift.analysis.features.sface_trunk`: SFace's last map, pooled) or ``texture``
(:func:`facesift.analysis.features.colour_texture` of the aligned crop). ``facesift train analysis``
writes the files and the card; nothing downloads.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facesift.errors import ModelNotInstalledError
from facesift.runtime import open_session

MODELS_DIR = Path(__file__).with_name("models")
CARD = "heads.json"


@dataclass(frozen=True)
class HeadCard:
    """What one head is: its file, input, output labels, how it was trained and how good it measured."""

    action: str
    file: str
    input: str
    labels: tuple[str, ...] = ()
    #: action-specific calibration: liveness threshold and operating point, age interval, ...
    calibration: dict[str, Any] = field(default_factory=dict)
    training: str = ""
    measured: dict[str, Any] = field(default_factory=dict)


class Head:
    """One ONNX head; ``run`` takes a batch of its input and returns its output (N, K)."""

    def __init__(self, card: HeadCard, folder: Path) -> None:
        self.card = card
        path = folder / card.file
        if not path.is_file():
            raise ModelNotInstalledError(f"The {card.action} head {path} is missing; reinstall facesift or run facesift train analysis")
        self._session, self._input = open_session(path)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def read_cards(folder: Path = MODELS_DIR) -> dict[str, HeadCard]:
    """The heads' cards by action ({} when the folder has no card)."""
    path = folder / CARD
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    return {
        action: HeadCard(action=action, **{k: tuple(v) if k == "labels" else v for k, v in entry.items()}) for action, entry in raw.items()
    }


def write_cards(cards: dict[str, HeadCard], folder: Path = MODELS_DIR) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CARD
    body = {a: {k: list(v) if isinstance(v, tuple) else v for k, v in c.__dict__.items() if k != "action"} for a, c in cards.items()}
    path.write_text(json.dumps(body, indent=2) + "\n")
    load_heads.cache_clear()
    return path


@functools.lru_cache(maxsize=4)
def load_heads(folder: Path = MODELS_DIR) -> dict[str, Head]:
    """Every head of the card, opened once per process."""
    return {action: Head(card, folder) for action, card in read_cards(folder).items()}
