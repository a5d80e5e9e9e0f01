"""SFace fine-tuned for age gaps (``facesift train age-gap``): young photos pulled towards their grown-up selves.

Why: at SFace's default threshold (FMR 1e-3 on adults) six in ten genuine young-adult pairs of LAG are rejected,
while the ranking is fine (docs/hard-cases.md): a young photo lands too far from the adult it became.

How: SFace's last two blocks (``conv_13``, ``conv_14``) are fine-tuned; the frozen part runs once per augmented
view of every training face (its ``conv_12_relu`` map, cached like the analysis networks'). Each young photo's
embedding is pulled towards the frozen SFace's mean embedding of the same person's adult photos (1 - cosine);
every other face, the person's adult photos and generic faces (pins90, UTKFace), keeps the frozen SFace's
embedding (distillation), so adult faces, and with them the calibrated thresholds, stay where they were. The
targets are fixed points, not classes: classifying the training people instead overfitted them and made
held-out people worse (docs/hard-cases.md). BatchNorm statistics stay SFace's.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesift.errors import FacesiftError
from facesift.evaluation.agegap import read_layout
from facesift.image import IMAGE_SUFFIXES, load_image
from facesift.training.analysis import augmented_maps, random_views, tail_outputs
from facesift.training.data import TrainingDataError
from facesift.training.sface import export_onnx, sface_from_onnx

#: the SFace map the fine-tuned part starts from, and the blocks it fine-tunes
START_LAYER = "conv_12_relu"
TUNED_BLOCKS = ("conv_13", "conv_14")
#: sets (under the faces folder) whose faces keep SFace's embedding during fine-tuning
GENERIC_SETS = ("pins90", "utkface-dev")


@dataclass(frozen=True)
class AgeGapConfig:
    """How the age-gap model trains (chosen on a quarter of lag-dev's fit half, trained on the other three, docs/hard-cases.md)."""

    epochs: int = 8
    steps_per_epoch: int = 50
    #: faces per step from the age-gap set (half of them young) and as many generic faces
    batch: int = 64
    lr: float = 1.5e-4
    #: weight of keeping SFace's embedding (adult and generic faces) against pulling young ones
    distill: float = 10.0
    #: augmented views of each age-gap face (generic faces: the face and its mirror image)
    views: int = 6
    seed: int = 0


def face_crops(files: Sequence[Path], cache: Path | None, log: Callable[[str], None] = print) -> tuple[np.ndarray, np.ndarray]:
    """Aligned 112 px crops of the face in each file (YuNet, the pipeline's ``auto`` choice) and the indices of the
    files that had one; kept in ``cache`` under a key of the files' names and sizes."""
    key = zlib.crc32("\n".join(f"{f.resolve()}:{f.stat().st_size}" for f in files).encode())
    path = Path(cache) / f"age-gap-crops-{len(files)}-{key:08x}.npz" if cache is not None else None
    if path is not None and path.is_file():
        with np.load(path) as stored:
            return stored["crops"], stored["found"]
    from facesift.pipeline import get_pipeline

    pipeline = get_pipeline(low_resolution=False)  # training data must not depend on models trained before
    crops, found = [], []
    for index, file in enumerate(files):
        try:
            image = load_image(file)
            faces = pipeline.detect(image, policy="auto")
        except FacesiftError as exc:
            log(f"skipped {file}: {exc}")
            continue
        if faces:
            crops.append(pipeline.embedder.align(image, faces[0].face))
            found.append(index)
    log(f"faces found in {len(found)} of {len(files)} photos")
    result = (np.stack(crops) if crops else np.zeros((0, 112, 112, 3), np.uint8)), np.array(found, np.int64)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, crops=result[0], found=result[1])
        tmp.replace(path)
    return result


def age_gap_faces(data: Path, people: Sequence[str], cache: Path | None,
                  log: Callable[[str], None] = print) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops of ``people``'s photos in a ``<person>/y/`` + adult layout: (crops, person index, young flag)."""
    layout = read_layout(Path(data))
    missing = sorted(set(people) - set(layout))
    if missing:
        raise TrainingDataError(f"{data}: no young and adult photos for {', '.join(missing[:5])}")
    files, person, young = [], [], []
    for index, name in enumerate(people):
        young_photos, adult_photos = layout[name]
        for photos, is_young in ((young_photos, True), (adult_photos, False)):
            files += [path for path, _ in photos]
            person += [index] * len(photos)
            young += [is_young] * len(photos)
    crops, found = face_crops(files, cache, log)
    return crops, np.array(person)[found], np.array(young)[found]


def generic_faces(faces_dir: Path, cache: Path | None, log: Callable[[str], None] = print) -> np.ndarray:
    """Crops of every photo of :data:`GENERIC_SETS` (the faces that must keep SFace's embedding)."""
    files = []
    for name in GENERIC_SETS:
        root = Path(faces_dir) / name
        if not root.is_dir():
            raise TrainingDataError(f"{root} is missing: the age-gap model keeps SFace's embedding on {', '.join(GENERIC_SETS)}")
        files += sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return face_crops(files, cache, log)[0]


class TunedTail(nn.Module):
    """SFace after :data:`START_LAYER` (its names kept, so the weights load back into the whole network), with only
    :data:`TUNED_BLOCKS` trainable; output the embedding, not normalised."""

    def __init__(self, sface: nn.Sequential) -> None:
        super().__init__()
        names = list(sface._modules)
        after = names[names.index(START_LAYER) + 1 :]
        self.layers = nn.Sequential(OrderedDict((name, sface._modules[name]) for name in after))
        for name, module in self.layers.named_children():
            module.requires_grad_(name.startswith(TUNED_BLOCKS))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.layers(maps)


def fine_tune(maps: np.ndarray, person: np.ndarray, young: np.ndarray, generic: np.ndarray, config: AgeGapConfig,
              log: Callable[[str], None] = print) -> nn.Sequential:
    """The whole SFace network with its :data:`TUNED_BLOCKS` fine-tuned (see the module docstring). ``maps`` and
    ``generic``: (N, views, 512, 14, 14) :data:`START_LAYER` maps of the age-gap faces and of the generic faces."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    sface = sface_from_onnx()
    tail, teacher = TunedTail(sface), TunedTail(sface_from_onnx()).requires_grad_(False)
    with_adult = np.unique(person[~young])
    rows = np.flatnonzero(np.isin(person, with_adult))
    young_rows = rows[young[rows]]
    if len(young_rows) == 0:
        raise TrainingDataError("no young photo of a person with adult photos to train on")
    adults = rows[~young[rows]]
    targets = torch.zeros(int(person.max()) + 1, 128)
    targets.index_add_(0, torch.from_numpy(person[adults]), F.normalize(torch.from_numpy(tail_outputs(teacher, maps, adults))))
    targets = F.normalize(targets)
    optimiser = torch.optim.AdamW([p for p in tail.parameters() if p.requires_grad], lr=config.lr, weight_decay=1e-4)
    steps = config.epochs * config.steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=steps, pct_start=0.1)
    tail.train()  # SFace's own dropout (0.4, before its last layer) regularises the fine-tuning ...
    for module in tail.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.eval()  # ... while BatchNorm keeps SFace's statistics
    for step in range(steps):
        batch = np.concatenate([rng.choice(young_rows, config.batch // 2), rng.choice(rows, config.batch // 2)])
        is_young = torch.from_numpy(young[batch])
        faces = random_views(maps, batch, rng)
        generic_batch = random_views(generic, rng.choice(len(generic), config.batch), rng)
        out = F.normalize(tail(faces))
        with torch.no_grad():
            sface_out, sface_generic = F.normalize(teacher(faces)), F.normalize(teacher(generic_batch))
        pull = (1 - (out[is_young] * targets[torch.from_numpy(person[batch][young[batch]])]).sum(1)).mean()
        keep = ((1 - (F.normalize(tail(generic_batch)) * sface_generic).sum(1)).mean()
                + (1 - (out[~is_young] * sface_out[~is_young]).sum(1)).mean())
        loss = pull + config.distill * keep
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if (step + 1) % config.steps_per_epoch == 0:
            log(f"epoch {(step + 1) // config.steps_per_epoch} of {config.epochs}: pull {pull.item():.3f} keep {keep.item():.4f}")
    sface.eval()
    return sface


def train_age_gap(data: Path, people: Sequence[str], faces_dir: Path, cache: Path | None, out: Path,
                  config: AgeGapConfig = AgeGapConfig(), log: Callable[[str], None] = print) -> Path:
    """Fine-tune SFace on ``people`` of the age-gap set ``data`` and write it as ONNX to ``out`` (see the module docstring)."""
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    crops, person, young = age_gap_faces(data, people, cache, log)
    generic = generic_faces(faces_dir, cache, log)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(cache) if cache is not None else Path(scratch)
        maps = augmented_maps(crops, START_LAYER, config.views, config.seed, folder, log)
        generic_maps = augmented_maps(generic, START_LAYER, 2, config.seed, folder, log)
        log(f"fine-tuning on {len(np.unique(person))} people ({int(young.sum())} young and {int((~young).sum())} adult photos), "
            f"keeping SFace's embedding on {len(generic)} generic faces")
        return export_onnx(fine_tune(maps, person, young, generic_maps, config, log), out)
