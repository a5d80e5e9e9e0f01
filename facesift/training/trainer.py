"""A small trainer: SGD with a cosine schedule, progress and log callbacks, a checkpoint every epoch, resume, and a
held-out evaluation every epoch (which is only printed and logged: no epoch is picked by it, the last wins).

Two tasks share it: :class:`EmbedderTrainer` (fine-tune SFace with a margin loss, optionally distilled from
the frozen full-resolution SFace: the cross-resolution embedder) and ``SuperResTrainer`` (superres.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from facesift.evaluation.datasets import Pair
from facesift.resolution import shrink_and_back
from facesift.training.data import BalancedIdentitySampler, CropSet, FaceDataset, TrainingAugmentation
from facesift.training.losses import create_loss
from facesift.training.sface import export_onnx, sface_from_onnx

#: ``progress(epoch, step, steps, loss)``: called as each epoch starts (step 0, loss None) and after each of its
#: ``steps`` steps with that step's loss; epochs count from 1. The CLI draws it as a progress bar.
StepProgress = Callable[[int, int, int, float | None], None]


@dataclass
class TrainConfig:
    """Everything a run depends on; saved in its checkpoint and beside its model."""

    output: str
    name: str = "sface-lowres"
    loss: str = "arcface"
    loss_options: dict[str, float] = field(default_factory=dict)
    epochs: int = 4
    identities_per_batch: int = 16
    images_per_identity: int = 4
    lr: float = 0.001
    head_lr: float = 0.01
    weight_decay: float = 5e-4
    #: gradients are clipped to this norm (a fresh margin head's first gradients can wreck a pretrained network)
    clip: float = 5.0
    #: keep BatchNorm statistics (and their affine part) as SFace learned them on its large data
    freeze_bn: bool = True
    #: weight of the distillation term 1 - cos(student(degraded), teacher(clean)); 0 turns it off
    distill: float = 10.0
    sizes: tuple[int, int] = (7, 112)
    low_res_probability: float = 0.6
    steps_per_epoch: int | None = None
    eval_sizes: tuple[int, ...] = (112, 28, 14, 7)
    #: ONNX file the student starts from (one written by ``facesift train``); empty: SFace itself
    init: str = ""
    seed: int = 0
    threads: int | None = None


@dataclass(frozen=True)
class EvalPairs:
    """Held-out pairs as aligned crops: ``a`` stays at full resolution, ``b`` is degraded per size."""

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray


def prepare_pairs(pairs: list[Pair], limit: int | None = None, cache: Path | None = None) -> EvalPairs:
    """Detect and align both sides of (the first ``limit``) pairs, keeping pairs with a face on both sides."""
    selected = _balanced(pairs, limit)
    key = hashlib.sha256(repr([(str(p.a), str(p.b)) for p in selected]).encode()).hexdigest()[:16]
    path = cache / f"pairs-{key}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as data:
            return EvalPairs(data["a"], data["b"], data["same"])
    result = _align_pairs(selected)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, a=result.a, b=result.b, same=result.same)
    return result


def _align_pairs(selected: list[Pair]) -> EvalPairs:
    from facesift.image import load_image
    from facesift.pipeline import get_pipeline

    pipeline = get_pipeline(low_resolution=False)
    a, b, same = [], [], []
    for pair in selected:
        crops = []
        for path in (pair.a, pair.b):
            image = load_image(path)
            faces = pipeline.detector.detect(image)
            if faces:
                crops.append(pipeline.embedder.align(image, max(faces, key=lambda f: f.area)))
        if len(crops) == 2:
            a.append(crops[0])
            b.append(crops[1])
            same.append(pair.same)
    return EvalPairs(np.stack(a), np.stack(b), np.asarray(same))


def _balanced(pairs: list[Pair], limit: int | None) -> list[Pair]:
    if limit is None or limit >= len(pairs):
        return pairs
    same = [p for p in pairs if p.same][: limit // 2]
    return same + [p for p in pairs if not p.same][: limit - len(same)]


def degrade(crops: np.ndarray, size: int) -> np.ndarray:
    """The sweep's protocol: shrink each crop to ``size`` px (area) and bring it back (bicubic)."""
    if size >= crops.shape[1]:
        return crops
    return np.stack([shrink_and_back(c, size) for c in crops])


def two_fold_accuracy(similarity: np.ndarray, same: np.ndarray) -> float:
    """Verification accuracy with the threshold chosen on one half of the pairs and applied to the other."""
    halves = [np.arange(len(same)) % 2 == k for k in (0, 1)]
    correct = 0
    for fit, test in (halves, halves[::-1]):
        candidates = np.unique(similarity[fit])
        accuracy = [((similarity[fit] >= t) == same[fit]).mean() for t in candidates]
        threshold = candidates[int(np.argmax(accuracy))]
        correct += int(((similarity[test] >= threshold) == same[test]).sum())
    return correct / len(same)


def embed(model: nn.Module, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    """L2-normalised embeddings of (N, H, W, 3) uint8 crops, in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(crops), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(crops[start : start + batch].transpose(0, 3, 1, 2), dtype=np.float32))
            out.append(F.normalize(model(chunk)).numpy())
    model.train(was_training)
    return np.concatenate(out)


def evaluate_embedder(model: nn.Module, pairs: EvalPairs, sizes: tuple[int, ...]) -> dict[str, float]:
    """Accuracy (two-fold threshold) per size, ``b`` shrunk to each size: a full-resolution gallery against small probes."""
    gallery = embed(model, pairs.a)
    return {f"acc@{size}": two_fold_accuracy((gallery * embed(model, degrade(pairs.b, size))).sum(1), pairs.same) for size in sizes}


class Trainer:
    """The loop; subclasses give the modules, one step's loss, the evaluation and the export."""

    def __init__(self, config: TrainConfig, train: CropSet, held_out: EvalPairs | None) -> None:
        self.config = config
        self.output = Path(config.output)
        self.train_set, self.held_out = train, held_out
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0

    # --- subclass hooks ---------------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        raise NotImplementedError

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def step_loss(self, batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        raise NotImplementedError

    def export(self) -> Path:
        raise NotImplementedError

    def loader(self) -> DataLoader:
        dataset = FaceDataset(self.train_set, self.degradation(), seed=self.config.seed + self.epoch)
        sampler = BalancedIdentitySampler(
            self.train_set.labels, self.config.identities_per_batch, self.config.images_per_identity, seed=self.config.seed + self.epoch
        )
        if self.config.steps_per_epoch:
            sampler.batches = self.config.steps_per_epoch
        return DataLoader(dataset, batch_size=self.config.identities_per_batch * self.config.images_per_identity, sampler=sampler)

    def degradation(self) -> TrainingAugmentation:
        return TrainingAugmentation(sizes=tuple(self.config.sizes), low_res_probability=self.config.low_res_probability)

    # --- the loop --------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.output / "checkpoint.pt"

    def fit(self, *, resume: bool = True, progress: StepProgress | None = None, log: Callable[[str], None] | None = None
            ) -> list[dict[str, Any]]:
        """Train to ``config.epochs``, resuming from the output folder's checkpoint when there is one.

        Each epoch's record (also appended to ``history.jsonl``) goes to ``log`` as one line (default: stderr).
        """
        log = log or (lambda line: print(line, file=sys.stderr))
        self.output.mkdir(parents=True, exist_ok=True)
        steps = len(self.loader())
        self.optimizer = torch.optim.SGD(self.parameter_groups(), momentum=0.9, weight_decay=self.config.weight_decay)
        total = max(1, steps * self.config.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        if resume and self.checkpoint_path.is_file():
            self.load_checkpoint()
        elif self.held_out is not None and not self.history:
            self.history.append({"epoch": 0, **self.evaluate()})
            self._log(self.history[-1], log)
        while self.epoch < self.config.epochs:
            started, cpu_started, totals, count, first = time.time(), time.process_time(), {}, 0, float("nan")
            if progress:
                progress(self.epoch + 1, 0, steps, None)
            for batch in self.loader():
                loss, metrics = self.step_loss(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.config.clip:
                    torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], self.config.clip)
                self.optimizer.step()
                self.scheduler.step()
                for key, value in metrics.items():
                    totals[key] = totals.get(key, 0.0) + value
                first = first if count else metrics["loss"]
                count += 1
                if progress:
                    progress(self.epoch + 1, count, steps, metrics["loss"])
            self.epoch += 1
            # CPU seconds per step (all threads) say what a step costs even on a busy machine
            record = {
                "epoch": self.epoch,
                "seconds": round(time.time() - started, 1),
                "s_per_step": round((time.time() - started) / max(count, 1), 3),
                "cpu_s_per_step": round((time.process_time() - cpu_started) / max(count, 1), 3),
            }
            record |= {f"train_{k}": round(v / max(count, 1), 4) for k, v in totals.items()}
            record |= {"first_step_loss": round(first, 4), "last_step_loss": round(metrics["loss"], 4)}
            if self.held_out is not None:
                record |= self.evaluate()
            self.history.append(record)
            self._log(record, log)
            self.save_checkpoint()
        return self.history

    def _log(self, record: dict[str, Any], log: Callable[[str], None]) -> None:
        log(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        with (self.output / "history.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def save_checkpoint(self) -> None:
        state = {
            "config": asdict(self.config),
            "epoch": self.epoch,
            "history": self.history,
            "modules": {name: module.state_dict() for name, module in self.modules().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.checkpoint_path)

    def load_checkpoint(self) -> None:
        state = torch.load(self.checkpoint_path, weights_only=False)
        for name, module in self.modules().items():
            module.load_state_dict(state["modules"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.history = state["epoch"], state["history"]


class EmbedderTrainer(Trainer):
    """Fine-tune SFace: margin (or metric) loss on identities, plus distillation from the frozen full-resolution
    SFace (its embeddings of the clean crop, precomputed in the CropSet) when ``config.distill > 0``."""

    def __init__(self, config: TrainConfig, train: CropSet, held_out: EvalPairs | None) -> None:
        super().__init__(config, train, held_out)
        if config.distill > 0 and train.teacher is None:
            raise ValueError("distillation needs the teacher's embeddings: prepare the crops with teacher=True")
        self.student = sface_from_onnx(config.init or None).train()
        self.head = create_loss(config.loss, 128, len(train.identities), **config.loss_options)
        if train.teacher is not None and isinstance(getattr(self.head, "weight", None), nn.Parameter):
            # start each class at the teacher's mean embedding of that person: the margin loss then begins
            # small on clean faces and pulls mostly on degraded ones, instead of first scrambling the network
            centres = np.stack([train.teacher[train.labels == k, 0].mean(0) for k in range(len(train.identities))])
            self.head.weight.data = torch.from_numpy(centres.astype(np.float32))
        self.probe = self._probe_batch()

    def _probe_batch(self, count: int = 128):
        """A fixed, once-degraded sample of training crops: its loss, logged each epoch, is comparable across
        epochs (a step's loss is not: every batch has other people and other sizes)."""
        rng = np.random.default_rng(self.config.seed)
        indices = rng.choice(len(self.train_set.labels), min(count, len(self.train_set.labels)), replace=False)
        dataset = FaceDataset(self.train_set, self.degradation(), seed=self.config.seed)
        return [
            torch.stack(items) if isinstance(items[0], torch.Tensor) else torch.tensor(items)
            for items in zip(*(dataset[int(i)] for i in indices), strict=True)
        ]

    def probe_loss(self) -> dict[str, float]:
        images, labels, target, _, _ = self.probe
        self.student.eval()
        self.head.eval()
        with torch.no_grad():
            embeddings = torch.cat([self.student(images[i : i + 64]) for i in range(0, len(images), 64)])
            identity = float(self.head(embeddings, labels, images)) if list(self.head.parameters()) else float("nan")
            distill = float((1 - F.cosine_similarity(embeddings, target)).mean()) if target.numel() else float("nan")
        self.head.train()
        return {"probe_identity": round(identity, 4), "probe_distill": round(distill, 4)}

    def modules(self) -> dict[str, nn.Module]:
        return {"student": self.student, "head": self.head}

    def parameter_groups(self) -> list[dict]:
        groups = [{"params": list(self.student.parameters()), "lr": self.config.lr}]
        head = list(self.head.parameters())
        return groups + ([{"params": head, "lr": self.config.head_lr, "weight_decay": 0.0}] if head else [])

    def step_loss(self, batch) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels, target, _, _ = batch
        self.student.train()
        if self.config.freeze_bn:
            for module in self.student.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
                    module.requires_grad_(False)
        embeddings = self.student(images)
        identity = self.head(embeddings, labels, images)
        metrics = {"identity": float(identity.detach())}
        loss = identity
        if self.config.distill > 0:
            distill = (1 - F.cosine_similarity(embeddings, target)).mean()
            loss = loss + self.config.distill * distill
            metrics["distill"] = float(distill.detach())
        metrics["loss"] = float(loss.detach())
        return loss, metrics

    def evaluate(self) -> dict[str, float]:
        accuracy = evaluate_embedder(self.student, self.held_out, tuple(self.config.eval_sizes))
        return self.probe_loss() | {k: round(v, 4) for k, v in accuracy.items()}

    def export(self) -> Path:
        return export_onnx(self.student, self.output / f"{self.config.name}.onnx")
