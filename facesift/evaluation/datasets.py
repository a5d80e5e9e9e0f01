"""The evaluation data: identity folders, LFW-format pairs files, CSV pair lists, per-image attributes.

Every image is named by its path; the same file under two names is one image to the embedding cache
(which keys by content), never two.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from facesift.errors import DatasetError
from facesift.image import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Pair:
    """Two images, whether they show the same person, and the fold the protocol puts the pair in."""

    a: Path
    b: Path
    same: bool
    fold: int


@dataclass(frozen=True)
class IdentityDataset:
    """``<root>/<person>/<image>``: one folder per identity, images sorted by file name."""

    root: Path
    people: tuple[str, ...]
    images: tuple[Path, ...]
    labels: tuple[int, ...]  # index into ``people`` for each image


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_identity_folders(root: str | Path) -> IdentityDataset:
    """Read an identity-folder dataset; folders starting with ``_`` or ``.`` (unlabelled extras) are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; --data must be a folder laid out as <person>/<image>")
    people, images, labels = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        files = _image_files(folder)
        if files:
            labels.extend([len(people)] * len(files))
            people.append(folder.name)
            images.extend(files)
    if not images:
        raise DatasetError(f"No <person>/<image> files under {root}; expected one folder of images per person")
    return IdentityDataset(root, tuple(people), tuple(images), tuple(labels))


def load_identity_roots(roots: Sequence[str | Path]) -> IdentityDataset:
    """Several datasets as one, each person named ``<root name>/<person>``, so the same folder name in two sets is
    two people. Besides ``<person>/<image>``, a folder holding only sub-folders of images is one person per
    sub-folder (Families in the Wild's ``F<family>/MID<member>/``); images in deeper folders (lag-dev's ``y/``,
    the same person young) are left out."""
    if not roots:
        raise DatasetError("Name at least one dataset folder")
    people, images, labels = [], [], []
    for root in map(Path, roots):
        if not root.is_dir():
            raise DatasetError(f"{root} is not a folder; each --data must be a folder laid out as <person>/<image>")
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
            files = _image_files(folder)
            members = [(folder.name, files)] if files else [
                (f"{folder.name}/{sub.name}", _image_files(sub)) for sub in sorted(folder.iterdir()) if sub.is_dir()
            ]
            for name, found in members:
                if found:
                    labels.extend([len(people)] * len(found))
                    people.append(f"{root.name}/{name}")
                    images.extend(found)
    if not images:
        raise DatasetError(f"No <person>/<image> files under {', '.join(map(str, roots))}")
    common = Path(*Path(str(roots[0])).parts[:-1]) if len(roots) > 1 else Path(roots[0])
    return IdentityDataset(common, tuple(people), tuple(images), tuple(labels))


def read_pairs(path: str | Path, data: str | Path) -> list[Pair]:
    """Pairs from an LFW-format pairs file (tab/space separated) or a CSV with ``img_a,img_b,same``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Pairs file {path} does not exist")
    if path.suffix.lower() == ".csv":
        return read_csv_pairs(path, data)
    return read_lfw_pairs(path, data)


def read_lfw_pairs(path: str | Path, data: str | Path) -> list[Pair]:
    """An LFW pairs file: a ``folds<TAB>n`` header, then per fold n same pairs and n different pairs.

    Indices are 1-based. A pair resolves to LFW's own names (``name/name_0001.jpg``) when that file exists,
    else to the i-th of the person's files sorted by name (how ``celeba300`` numbers its CelebA files).
    A file with a single fold (LFW's ``pairsDevTest.txt``) is dealt into 10 folds like a CSV.
    """
    data = Path(data)
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        raise DatasetError(f"{path} is empty")
    header, rows = lines[0], lines[1:]
    try:
        folds, per_fold = (int(header[0]), int(header[1])) if len(header) == 2 else (1, len(rows) // 2)
    except ValueError:
        raise DatasetError(f"{path}: the first line must be '<folds> <pairs per fold>' as in LFW's pairs.txt") from None
    if folds * 2 * per_fold != len(rows):
        raise DatasetError(f"{path}: header says {folds} folds x 2 x {per_fold} pairs but the file has {len(rows)}")
    listing: dict[str, list[Path]] = {}
    pairs = []
    for number, fields in enumerate(rows):
        if len(fields) == 3:
            a, i, b, j = fields[0], fields[1], fields[0], fields[2]
        elif len(fields) == 4:
            a, i, b, j = fields
        else:
            raise DatasetError(f"{path}: line {number + 2} has {len(fields)} fields; expected 3 (same) or 4 (different)")
        pairs.append(
            Pair(_lfw_file(data, a, i, listing, path), _lfw_file(data, b, j, listing, path), a == b, number // (2 * per_fold))
        )
    return pairs if folds > 1 else deal_into_folds(pairs)


def deal_into_folds(pairs: list[Pair], folds: int = 10) -> list[Pair]:
    """Same and different pairs each dealt round-robin into ``folds`` folds (for lists that define none)."""
    counts = {True: 0, False: 0}
    dealt = []
    for pair in pairs:
        dealt.append(Pair(pair.a, pair.b, pair.same, counts[pair.same] % folds))
        counts[pair.same] += 1
    return dealt


def _lfw_file(data: Path, person: str, index: str, listing: dict[str, list[Path]], source: Path) -> Path:
    try:
        number = int(index)
    except ValueError:
        raise DatasetError(f"{source}: {index!r} is not an image number") from None
    lfw_name = data / person / f"{person}_{number:04d}.jpg"
    if lfw_name.is_file():
        return lfw_name
    if person not in listing:
        folder = data / person
        if not folder.is_dir():
            raise DatasetError(f"{source} names {person!r} but {folder} does not exist; is --data the right folder?")
        listing[person] = _image_files(folder)
    files = listing[person]
    if not 1 <= number <= len(files):
        raise DatasetError(f"{source}: {person} has {len(files)} images, the file asks for number {number}")
    return files[number - 1]


def read_csv_pairs(path: str | Path, data: str | Path, folds: int = 10) -> list[Pair]:
    """A CSV with columns ``img_a,img_b,same`` (paths relative to ``data``; same is 1/0 or true/false).

    Such a file has no folds, so same and different pairs are each dealt round-robin into ``folds`` folds
    (the folds are then not identity-disjoint; a model's threshold is still never chosen on its test fold).
    """
    data = Path(data)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"img_a", "img_b", "same"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path} lacks the column(s) {', '.join(sorted(missing))}; expected img_a,img_b,same")
        rows = list(reader)
    pairs = []
    for number, row in enumerate(rows):
        value = row["same"].strip().lower()
        if value not in ("1", "0", "true", "false", "yes", "no"):
            raise DatasetError(f"{path}: row {number + 2} has same={row['same']!r}; use 1 or 0")
        same = value in ("1", "true", "yes")
        a, b = data / row["img_a"], data / row["img_b"]
        for image in (a, b):
            if not image.is_file():
                raise DatasetError(f"{path}: row {number + 2} names {image}, which does not exist")
        pairs.append(Pair(a, b, same, 0))
    return deal_into_folds(pairs, folds)


def read_attributes(path: str | Path, data: str | Path, images: Sequence[Path]) -> dict[str, dict[Path, str]]:
    """A CSV ``image,attr1,attr2...``: for each attribute, the value of each listed image.

    ``image`` is a path relative to ``data`` (or just a file name when that is unambiguous).
    """
    data = Path(data)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or reader.fieldnames[0] != "image" or len(reader.fieldnames) < 2:
            raise DatasetError(f"{path}: expected a header 'image,<attribute>,...'")
        rows = list(reader)
    by_name: dict[str, list[Path]] = {}
    for image in images:
        by_name.setdefault(image.name, []).append(image)
    known = set(images)
    attributes: dict[str, dict[Path, str]] = {name: {} for name in reader.fieldnames[1:]}
    for row in rows:
        image = data / row["image"]
        if image not in known:
            matches = by_name.get(Path(row["image"]).name, [])
            if len(matches) != 1:
                continue  # an image this evaluation does not use
            image = matches[0]
        for name in attributes:
            if row[name] not in (None, ""):
                attributes[name][image] = row[name]
    return attributes
