"""The analysis data sets as laid out in the shared faces folder, their one split, and their faces prepared once.

Layouts (the same commands work on any set laid out so):

- age/gender (UTKFace): ``<dir>/<age>_<gender>_<race>_<anything>.jpg`` (gender 0 male, 1 female; race 0-4).
- emotion (FER2013): ``<dir>/<emotion>/*.jpg``, one folder per class of :data:`EMOTIONS`.
- liveness (NUAA): ``<dir>/live/*.jpg`` and ``<dir>/spoof/*.jpg``; the file name's first ``_`` field is the subject.

The split: UTKFace and FER2013 have no identities, so a file goes to one of five folds by a hash of its name
(fold 0 is held out). NUAA is split by subject, never by frame: the subjects whose ids sort last (a third of
them) are held out. Every reported number is on the held-out part; ``split="all"`` evaluates a whole other set.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from facesift.errors import DatasetError
from facesift.image import IMAGE_SUFFIXES, load_image

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
RACES: tuple[str, ...] = ("white", "black", "asian", "indian", "other")
AGE_GROUPS: tuple[tuple[str, int, int], ...] = (("0-12", 0, 12), ("13-19", 13, 19), ("20-39", 20, 39), ("40-59", 40, 59), ("60+", 60, 200))
HELD_OUT_FOLD = 0
FOLDS = 5

Split = Literal["train", "held-out", "all"]


@dataclass(frozen=True)
class Sample:
    """One labelled image; ``group`` is what the split keeps together (the file, or a NUAA subject)."""

    path: Path
    group: str
    age: float = float("nan")
    gender: int = -1
    race: int = -1
    emotion: int = -1
    live: int = -1


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def file_fold(name: str) -> int:
    """The fold of a file of a set without identities: a stable hash of its name."""
    return zlib.crc32(name.encode()) % FOLDS


def read_utkface(folder: Path) -> list[Sample]:
    """UTKFace-style file names ``age_gender_race_*``; files whose name does not parse are refused, not guessed."""
    samples = []
    for path in _images(folder):
        fields = path.name.split("_")
        try:
            age, gender, race = int(fields[0]), int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise DatasetError(f"{path.name}: expected a UTKFace name age_gender_race_*.jpg") from None
        if gender not in (0, 1) or not 0 <= age <= 120:
            raise DatasetError(f"{path.name}: gender must be 0 or 1 and age 0-120")
        samples.append(Sample(path, path.name, age=float(age), gender=gender, race=race if 0 <= race < len(RACES) else -1))
    return samples


def read_emotions(folder: Path) -> list[Sample]:
    """One folder per emotion (the seven FER2013 names); other folders are an error."""
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    unknown = set(found) - set(EMOTIONS)
    if unknown or not found:
        raise DatasetError(f"{folder}: expected folders named {', '.join(EMOTIONS)}; found {', '.join(found) or 'none'}")
    return [Sample(p, p.name, emotion=EMOTIONS.index(name)) for name in found for p in _images(folder / name)]


def read_liveness(folder: Path) -> list[Sample]:
    """``live/`` and ``spoof/`` folders; the subject is the file name's first ``_`` field."""
    samples = [Sample(p, p.name.split("_")[0], live=int(kind == "live")) for kind in ("live", "spoof") for p in _images(folder / kind)]
    if not samples:
        raise DatasetError(f"{folder}: no images under live/ and spoof/")
    return samples


def held_out_subjects(samples: Sequence[Sample]) -> set[str]:
    """The last third of the subjects in sorted order (at least one): NUAA 0007-0009 in the shared set."""
    subjects = sorted({s.group for s in samples})
    return set(subjects[len(subjects) - max(1, len(subjects) // 3):])


def split(samples: Sequence[Sample], part: Split, *, by_subject: bool = False) -> list[Sample]:
    """The training or held-out part (or all) of a set, by file-name fold or by subject."""
    if part == "all":
        return list(samples)
    if by_subject:
        held = held_out_subjects(samples)
        chosen = [s for s in samples if (s.group in held) == (part == "held-out")]
    else:
        chosen = [s for s in samples if (file_fold(s.group) == HELD_OUT_FOLD) == (part == "held-out")]
    if not chosen:
        raise DatasetError(f"the {part} part of this set is empty")
    return chosen


@dataclass(frozen=True)
class PreparedFaces:
    """The face of each sample as analysis sees it: the 112 px aligned crop and its SFace embedding.

    ``detector`` says per sample whether YuNet found the face or the whole image was taken (``none``).
    """

    crops: np.ndarray  # (N, 112, 112, 3) uint8 RGB
    embeddings: np.ndarray  # (N, 128) float32
    detector: tuple[str, ...]


def prepare_faces(samples: Sequence[Sample], progress: Callable[[int], None] | None = None) -> PreparedFaces:
    """Detect (YuNet, the whole image when it finds nothing), align and embed each sample's largest face."""
    from facesift.pipeline import get_pipeline

    found, whole = get_pipeline(), get_pipeline(detector="none")
    crops, detectors = [], []
    for sample in samples:
        pixels = load_image(sample.path)
        faces = found.detector.detect(pixels)
        pipeline = found if faces else whole
        face = max(faces, key=lambda f: f.area) if faces else whole.detector.detect(pixels)[0]
        crops.append(pipeline.embedder.align(pixels, face))
        detectors.append(face.detector)
        if progress is not None:
            progress(1)
    stack = np.stack(crops) if crops else np.zeros((0, 112, 112, 3), np.uint8)
    return PreparedFaces(stack, found.embedder.embed(stack), tuple(detectors))


def prepared(samples: Sequence[Sample], cache: Path | None, progress: Callable[[int], None] | None = None) -> PreparedFaces:
    """:func:`prepare_faces`, kept in ``cache`` under a key of the files' names and sizes (no work the second time)."""
    if cache is None:
        return prepare_faces(samples, progress)
    key = zlib.crc32("\n".join(f"{s.path.resolve()}:{s.path.stat().st_size}" for s in samples).encode())
    path = Path(cache) / f"analysis-{len(samples)}-{key:08x}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return PreparedFaces(stored["crops"], stored["embeddings"], tuple(stored["detector"]))
    faces = prepare_faces(samples, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, crops=faces.crops, embeddings=faces.embeddings, detector=np.array(faces.detector))
    tmp.replace(path)
    return faces
