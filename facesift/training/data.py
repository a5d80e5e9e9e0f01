"""Training data: the identity split, aligned crops cached once, on-the-fly degradation, balanced batches.

The split (one function, :func:`celeba300_split`): people of folds 1-5 of ``celeba300-pairs.txt`` (plus
``pins90``, ``orl``, ``yale``, ``johns``) train; folds 6-10 are held out for every reported number, so a
held-out test never sees a training identity.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from facesift.errors import FacesiftError
from facesift.evaluation.datasets import Pair, read_lfw_pairs
from facesift.image import IMAGE_SUFFIXES

#: extra identity folders under the shared faces folder used for training only (none is in celeba300's pairs)
EXTRA_TRAINING_FOLDERS = ("pins90", "orl", "yale", "johns")
TRAIN_FOLDS = range(0, 5)
TEST_FOLDS = range(5, 10)


class TrainingDataError(FacesiftError, ValueError):
    """Training data is missing or not laid out as identity folders."""


@dataclass(frozen=True)
class Split:
    """Who trains and which pairs test: training identity folders, and the held-out pairs."""

    train_folders: tuple[Path, ...]
    test_pairs: tuple[Pair, ...]


def celeba300_split(faces_dir: Path, *, extras: Sequence[str] = EXTRA_TRAINING_FOLDERS) -> Split:
    """The one split every low-resolution number uses.

    Training: the people named in folds 1-5 of ``celeba300-pairs.txt`` and every person of ``extras``.
    Test: the pairs of folds 6-10, whose people are disjoint from folds 1-5 (checked here).
    """
    pairs_file = faces_dir / "celeba300-pairs.txt"
    if not pairs_file.is_file():
        raise TrainingDataError(f"{pairs_file} not found; point --faces at the shared faces folder")
    pairs = read_lfw_pairs(pairs_file, faces_dir / "celeba300")
    train_people = {p.parent.name for pair in pairs if pair.fold in TRAIN_FOLDS for p in (pair.a, pair.b)}
    test_pairs = tuple(pair for pair in pairs if pair.fold in TEST_FOLDS)
    test_people = {p.parent.name for pair in test_pairs for p in (pair.a, pair.b)}
    if train_people & test_people:
        raise TrainingDataError(f"celeba300 folds share people: {sorted(train_people & test_people)[:5]}")
    folders = [faces_dir / "celeba300" / name for name in sorted(train_people)]
    for extra in extras:
        root = faces_dir / extra
        if root.is_dir():
            folders += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    return Split(tuple(folders), test_pairs)


@dataclass(frozen=True)
class CropSet:
    """Aligned 112x112 RGB crops with identity labels, and (optionally) the teacher's embeddings of them
    and of their mirror images, computed once so distillation costs no teacher forward pass."""

    crops: np.ndarray  # (N, 112, 112, 3) uint8
    labels: np.ndarray  # (N,) int64
    identities: tuple[str, ...]
    teacher: np.ndarray | None = None  # (N, 2, D): [plain, mirrored]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if self.teacher is None else {"teacher": self.teacher}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, crops=self.crops, labels=self.labels, identities=np.array(self.identities), **extra)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "CropSet":
        with np.load(path) as data:
            teacher = data["teacher"] if "teacher" in data.files else None
            return cls(data["crops"], data["labels"], tuple(str(v) for v in data["identities"]), teacher)


def identity_folders(roots: Sequence[Path]) -> list[Path]:
    """Each root is an identity folder (holds images) or a folder of identity folders."""
    folders: list[Path] = []
    for root in roots:
        if not root.is_dir():
            raise TrainingDataError(f"{root} is not a folder of identity folders")
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir()):
            folders.append(root)
        else:
            folders += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    if not folders:
        raise TrainingDataError(f"no identity folders under {', '.join(map(str, roots))}")
    return folders


def prepare_crops(
    folders: Sequence[Path], cache: Path | None = None, *, per_identity: int | None = None, teacher: bool = True, progress=None
) -> CropSet:
    """Detect (YuNet), align (112 px) and optionally embed (SFace) every image of ``folders``, cached as .npz.

    Images with no face are skipped; identities left with fewer than two crops are dropped.
    """
    key = hashlib.sha256(repr((sorted(map(str, folders)), per_identity, teacher)).encode()).hexdigest()[:16]
    path = cache / f"crops-{key}.npz" if cache else None
    if path is not None and path.is_file():
        return CropSet.load(path)
    from facesift.pipeline import get_pipeline

    pipeline = get_pipeline(low_resolution=False)  # training data must not depend on models trained before
    crops, labels, names = [], [], []
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:per_identity]
        found = []
        for item in pipeline.represent_batch(files, policy="largest"):
            if item.faces:
                image = pipeline_crop(pipeline, files[item.index], item.faces[0].face)
                found.append(image)
        if progress is not None:
            progress(1)
        if len(found) >= 2:
            crops += found
            labels += [len(names)] * len(found)
            names.append(f"{folder.parent.name}/{folder.name}")
    if not crops:
        raise TrainingDataError("no face was found in any training image")
    array = np.stack(crops)
    embeddings = None
    if teacher:
        embedder = pipeline.embedder
        embeddings = np.stack([embedder.embed(array), embedder.embed(array[:, :, ::-1])], axis=1)
    result = CropSet(array, np.asarray(labels, dtype=np.int64), tuple(names), embeddings)
    if path is not None:
        result.save(path)
    return result


def pipeline_crop(pipeline, source: Path, face) -> np.ndarray:
    """The 112 px aligned RGB crop of ``face`` in ``source``."""
    from facesift.image import load_image

    return pipeline.embedder.align(load_image(source), face)


@dataclass(frozen=True)
class TrainingAugmentation:
    """On-the-fly augmentation: random downsampling to ``sizes`` px and back, blur, JPEG, noise, flips.

    ``low_res_probability`` of the samples are shrunk to a size drawn log-uniformly from ``sizes`` (area
    interpolation, as a camera sensor averages) and brought back to 112 px (bicubic or bilinear at random).
    """

    sizes: tuple[int, int] = (7, 112)
    low_res_probability: float = 0.6
    blur_probability: float = 0.2
    jpeg_probability: float = 0.2
    noise_probability: float = 0.2
    flip_probability: float = 0.5

    def __call__(self, crop: np.ndarray, rng: random.Random) -> tuple[np.ndarray, bool, int]:
        """The degraded crop, whether it was mirrored, and the size it was shrunk to (112: not shrunk)."""
        size = crop.shape[0]
        flipped = rng.random() < self.flip_probability
        out = crop[:, ::-1] if flipped else crop
        shrunk = size
        if rng.random() < self.low_res_probability:
            low, high = self.sizes
            shrunk = int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))
            if shrunk < size:
                small = cv2.resize(out, (shrunk, shrunk), interpolation=cv2.INTER_AREA)
                out = cv2.resize(small, (size, size), interpolation=rng.choice([cv2.INTER_CUBIC, cv2.INTER_LINEAR]))
        if rng.random() < self.blur_probability:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 2.0))
        if rng.random() < self.jpeg_probability:
            _, encoded = cv2.imencode(".jpg", np.ascontiguousarray(out), [cv2.IMWRITE_JPEG_QUALITY, rng.randint(20, 90)])
            out = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
        if rng.random() < self.noise_probability:
            noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 10), out.shape)
            out = np.clip(out + noise, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(out), flipped, min(shrunk, size)


class FaceDataset(Dataset):
    """Items: (degraded crop as float CHW 0-255, label, teacher embedding or empty, clean crop, shrunk size)."""

    def __init__(self, crops: CropSet, degradation: TrainingAugmentation | None = None, seed: int = 0) -> None:
        self.data = crops
        self.degradation = degradation
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.data.labels)

    def __getitem__(self, index: int):
        clean = self.data.crops[index]
        crop, flipped, size = (clean, False, clean.shape[0]) if self.degradation is None else self.degradation(clean, self.rng)
        target = torch.zeros(0) if self.data.teacher is None else torch.from_numpy(self.data.teacher[index, int(flipped)])
        clean = clean[:, ::-1] if flipped else clean
        return _chw(crop), int(self.data.labels[index]), target, _chw(clean), size


def _chw(crop: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32))


class BalancedIdentitySampler(Sampler[int]):
    """Batches of ``identities_per_batch`` people x ``images_per_identity`` images each (P x K).

    Every person is drawn about equally often whatever their image count, and each batch has positives
    for every anchor, which triplet and contrastive losses need.
    """

    def __init__(self, labels: np.ndarray, identities_per_batch: int, images_per_identity: int, seed: int = 0) -> None:
        self.by_label: dict[int, list[int]] = {}
        for index, label in enumerate(labels.tolist()):
            self.by_label.setdefault(label, []).append(index)
        if len(self.by_label) < identities_per_batch:
            raise TrainingDataError(f"{len(self.by_label)} identities cannot fill batches of {identities_per_batch}")
        self.p, self.k = identities_per_batch, images_per_identity
        self.batches = max(1, len(labels) // (self.p * self.k))
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return self.batches * self.p * self.k

    def __iter__(self) -> Iterator[int]:
        people = list(self.by_label)
        for _ in range(self.batches):
            for label in self.rng.sample(people, self.p):
                members = self.by_label[label]
                picks = self.rng.sample(members, self.k) if len(members) >= self.k else self.rng.choices(members, k=self.k)
                yield from picks
