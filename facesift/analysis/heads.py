"""The shipped analysis heads: small ONNX files in ``facesift/analysis/models`` with one card, ``heads.json``.

Each head reads one kind of input (``input`` in its card): ``embedding`` (the face's 128-d SFace vector), one of
SFace's intermediate maps named by its layer (:data:`facesift.analysis.features.MAP_LAYERS`) or ``texture``
(:func:`facesift.analysis.features.colour_texture` of the aligned crop), and one named output of its file
(``output``; several heads may read one file, which then runs once). Files may store their weights in fp16;
they are turned back into fp32 in memory when loaded. ``facesift train analysis`` writes the files and the
card; nothing downloads.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facesift.errors import ModelNotInstalledError
from facesift.runtime import open_session

MODELS_DIR = Path(__file__).with_name("models")
CARD = "heads.json"


@dataclass(frozen=True)
class HeadCard:
    """What one head is: its file and the output it reads, its input, output labels, how it was trained and how
    good it measured."""

    action: str
    file: str
    input: str
    labels: tuple[str, ...] = ()
    #: the graph output this head reads ("": the file's first)
    output: str = ""
    #: action-specific calibration: liveness threshold and operating point, age interval, ...
    calibration: dict[str, Any] = field(default_factory=dict)
    training: str = ""
    measured: dict[str, Any] = field(default_factory=dict)


class Head:
    """One head: its card and the session of its file (shared with the other heads of that file)."""

    def __init__(self, card: HeadCard, session, input_name: str) -> None:
        self.card = card
        self.session, self.input_name = session, input_name
        self.output = card.output or session.get_outputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return run_heads([self], {self.card.input: batch})[self.card.action]


def run_heads(heads: Sequence[Head], inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each head's output (N, K) by action, from ``inputs`` by kind; a file that several heads read runs once."""
    by_session: dict[int, list[Head]] = {}
    for head in heads:
        by_session.setdefault(id(head.session), []).append(head)
    results = {}
    for group in by_session.values():
        first = group[0]
        names = list(dict.fromkeys(h.output for h in group))
        values = first.session.run(names, {first.input_name: np.ascontiguousarray(inputs[first.card.input], dtype=np.float32)})
        for head in group:
            results[head.card.action] = values[names.index(head.output)]
    return results


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


def _open(path: Path):
    from facesift.recognition.trained import unpack_shipped

    if not path.is_file():
        raise ModelNotInstalledError(f"The analysis head {path} is missing; reinstall facesift or run facesift train analysis")
    return open_session(unpack_shipped(path.read_bytes()))


@functools.lru_cache(maxsize=4)
def load_heads(folder: Path = MODELS_DIR) -> dict[str, Head]:
    """Every head of the card, each file opened once per process."""
    sessions = {}
    heads = {}
    for action, card in read_cards(folder).items():
        if card.file not in sessions:
            sessions[card.file] = _open(folder / card.file)
        heads[action] = Head(card, *sessions[card.file])
    return heads
