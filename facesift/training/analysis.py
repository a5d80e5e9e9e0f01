"""Training of the analysis heads (``facesift train analysis``): small networks on CPU, exported to ONNX.

Every head trains on the training part of its set only (:mod:`facesift.analysis.data`: file folds 1-4 of
UTKFace and FER2013, the first two thirds of NUAA's subjects), and every calibration (the age intervals, the
liveness threshold) comes from out-of-fold predictions inside that part, never from the held-out part.
Seeded: the same data gives the same files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from facesift.analysis.data import (
    EMOTIONS,
    RACES,
    PreparedFaces,
    Sample,
    file_fold,
    held_out_subjects,
    prepared,
    read_emotions,
    read_liveness,
    read_utkface,
)
from facesift.analysis.features import TEXTURE_DIMS, TRUNK_DIMS, colour_texture, sface_trunk
from facesift.analysis.heads import MODELS_DIR, HeadCard, read_cards, write_cards

#: age bands of the interval table (upper age of each band), and the share of faces the interval must hold
AGE_BANDS = (12, 19, 39, 59, 200)
AGE_COVERAGE = 0.8
#: the liveness operating point: live faces rejected (BPCER) on the training subjects' out-of-fold scores
LIVENESS_BPCER = 0.05
#: L2 strength (scikit-learn's C) of the linear heads on SFace's trunk, chosen out of fold on the training folds
#: (docs/analyze.md): gender 91.8-92.0 % for C 0.003-0.3, so the middle; emotion 53.0 / 52.1 / 51.7 % at 0.003 / 0.01 / 0.03
TRUNK_STRENGTH = {"gender": 0.03, "emotion": 0.003}


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 256
    epochs: int = 120
    lr: float = 3e-3
    weight_decay: float = 1e-3
    dropout: float = 0.3
    seed: int = 0


class EmbeddingHead(nn.Module):
    """An MLP on the L2-normalised 128-d embedding (scaled up so its entries are of order one)."""

    def __init__(self, outputs: int, config: HeadConfig, dims: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dims, config.hidden), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, outputs))
        self.scale = float(np.sqrt(dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * self.scale)


class StandardisedLinear(nn.Module):
    """A linear classifier on features standardised with the training set's mean and spread (kept inside)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, outputs: int = 1) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))
        self.linear = nn.Linear(len(mean), outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)


def _fit(model: nn.Module, x: np.ndarray, y: np.ndarray, loss: Callable, config: HeadConfig, batch: int = 256) -> nn.Module:
    torch.manual_seed(config.seed)
    generator = np.random.default_rng(config.seed)
    inputs, targets = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
    model.train()
    for _ in range(config.epochs):
        order = torch.as_tensor(generator.permutation(len(inputs)))
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            optimiser.zero_grad()
            loss(model(inputs[chosen]), targets[chosen]).backward()
            optimiser.step()
        schedule.step()
    return model.eval()


def _predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).numpy()


def _export(model: nn.Module, dims: tuple[int, ...], path: Path) -> None:
    buffer = io.BytesIO()
    torch.onnx.export(model.eval(), torch.zeros(1, *dims), buffer, dynamo=False, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "n"}, "output": {0: "n"}}, opset_version=17)
    path.write_bytes(buffer.getvalue())


def _out_of_fold(make: Callable[[], nn.Module], x, y, folds: np.ndarray, loss, config: HeadConfig) -> np.ndarray:
    """Predictions for each training sample from a model that did not see its fold."""
    out = None
    for fold in np.unique(folds):
        model = _fit(make(), x[folds != fold], y[folds != fold], loss, config)
        predicted = _predict(model, x[folds == fold])
        out = np.zeros((len(x), predicted.shape[1]), np.float32) if out is None else out
        out[folds == fold] = predicted
    return out


# --- the heads -------------------------------------------------------------------------------------------
def _age_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.smooth_l1_loss(output[:, 0], target.float(), beta=2.0)


def _logit_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(output[:, 0], target.float())


def _class_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(output, target.long(), label_smoothing=0.1)


def train_age(x: np.ndarray, ages: np.ndarray, folds: np.ndarray, out: Path, config: HeadConfig) -> HeadCard:
    make = lambda: EmbeddingHead(1, config)  # noqa: E731
    oof = _out_of_fold(make, x, ages, folds, _age_loss, config)[:, 0]
    bands, low = [], -1
    for upper in AGE_BANDS:  # interval per band of the *predicted* age, from the out-of-fold residuals
        chosen = (oof > low) & (oof <= upper)
        residual = ages[chosen] - oof[chosen] if chosen.sum() >= 10 else ages - oof
        below = float(-np.quantile(residual, (1 - AGE_COVERAGE) / 2))
        above = float(np.quantile(residual, (1 + AGE_COVERAGE) / 2))
        bands.append([upper, round(max(below, 0.5), 2), round(max(above, 0.5), 2)])
        low = upper
    _export(_fit(make(), x, ages, _age_loss, config), (128,), out / "age.onnx")
    mae = float(np.mean(np.abs(oof - ages)))
    return HeadCard("age", "age.onnx", "embedding", (), {"bands": bands, "coverage": AGE_COVERAGE},
                    f"MLP on SFace embeddings; UTKFace file folds 1-4 ({len(x)} faces)", {"out_of_fold_mae": round(mae, 2)})


def train_classes(action: str, x: np.ndarray, labels: np.ndarray, names: tuple[str, ...], folds: np.ndarray, out: Path,
                  config: HeadConfig, source: str) -> HeadCard:
    binary = len(names) == 2
    make = lambda: EmbeddingHead(1 if binary else len(names), config)  # noqa: E731
    loss = _logit_loss if binary else _class_loss
    oof = _out_of_fold(make, x, labels, folds, loss, config)
    predicted = (oof[:, 0] > 0).astype(int) if binary else oof.argmax(1)
    _export(_fit(make(), x, labels, loss, config), (x.shape[1],), out / f"{action}.onnx")
    return HeadCard(action, f"{action}.onnx", "embedding", names if not binary else (), {},
                    f"MLP on SFace embeddings; {source} ({len(x)} faces)",
                    {"out_of_fold_accuracy": round(float(np.mean(predicted == labels)), 4)})


def train_trunk_head(action: str, crops: np.ndarray, labels: np.ndarray, names: tuple[str, ...], folds: np.ndarray, out: Path,
                     strength: float, source: str, seed: int) -> HeadCard:
    """Logistic regression (L2, scikit-learn's ``C`` = ``strength``) on SFace's pooled trunk, standardised, exported
    as a :class:`StandardisedLinear` (one logit for two classes, one per class otherwise)."""
    from sklearn.linear_model import LogisticRegression

    features = sface_trunk(crops)

    def fit(x: np.ndarray, y: np.ndarray) -> StandardisedLinear:
        mean, std = x.mean(0), np.maximum(x.std(0), 1e-6)
        fitted = LogisticRegression(C=strength, max_iter=3000, random_state=seed).fit((x - mean) / std, y)
        head = StandardisedLinear(mean, std, outputs=len(fitted.intercept_))
        with torch.no_grad():
            head.linear.weight.copy_(torch.as_tensor(fitted.coef_, dtype=torch.float32))
            head.linear.bias.copy_(torch.as_tensor(fitted.intercept_, dtype=torch.float32))
        return head.eval()

    binary = len(names) == 2
    oof = np.zeros((len(features), 1 if binary else len(names)), np.float32)
    for fold in np.unique(folds):
        oof[folds == fold] = _predict(fit(features[folds != fold], labels[folds != fold]), features[folds == fold])
    predicted = (oof[:, 0] > 0).astype(int) if binary else oof.argmax(1)
    _export(fit(features, labels), (TRUNK_DIMS,), out / f"{action}.onnx")
    return HeadCard(action, f"{action}.onnx", "trunk", names if not binary else (), {},
                    f"logistic regression (C {strength}) on SFace's last convolutional map pooled over the face and its "
                    f"quarters; {source} ({len(features)} faces)",
                    {"out_of_fold_accuracy": round(float(np.mean(predicted == labels)), 4)})


def train_liveness(crops: np.ndarray, live: np.ndarray, subjects: np.ndarray, out: Path, config: HeadConfig) -> HeadCard:
    features = np.stack([colour_texture(c) for c in crops])
    make = lambda: StandardisedLinear(features.mean(0), features.std(0))  # noqa: E731
    linear = HeadConfig(epochs=200, lr=1e-2, weight_decay=1e-2, seed=config.seed)
    _, codes = np.unique(subjects, return_inverse=True)
    oof = _out_of_fold(make, features, live, codes, _logit_loss, linear)[:, 0]  # leave one subject out
    scores = 1.0 / (1.0 + np.exp(-oof))
    threshold = float(np.quantile(scores[live == 1], LIVENESS_BPCER))
    apcer = float(np.mean(scores[live == 0] >= threshold))
    _export(_fit(make(), features, live, _logit_loss, linear), (TEXTURE_DIMS,), out / "liveness.onnx")
    point = f"BPCER {LIVENESS_BPCER:.0%} on the training subjects, leave-one-subject-out"
    return HeadCard("liveness", "liveness.onnx", "texture", (), {"threshold": round(threshold, 4), "operating_point": point},
                    f"linear classifier on colour-texture (HSV + YCrCb uniform LBP) of the aligned crop; NUAA subjects "
                    f"{', '.join(sorted(set(subjects)))} ({len(crops)} frames)",
                    {"out_of_fold_apcer": round(apcer, 4), "out_of_fold_bpcer": LIVENESS_BPCER})


# --- the command's work --------------------------------------------------------------------------------
def _training_part(samples: list[Sample], faces: PreparedFaces, by_subject: bool):
    if by_subject:
        held = held_out_subjects(samples)
        keep = np.array([s.group not in held for s in samples])
    else:
        keep = np.array([file_fold(s.group) != 0 for s in samples])
    chosen = [s for s, k in zip(samples, keep, strict=True) if k]
    return chosen, faces.crops[keep], faces.embeddings[keep]


def train_heads(faces_dir: Path, cache: Path | None, actions: tuple[str, ...], out: Path = MODELS_DIR,
                config: HeadConfig = HeadConfig(), log: Callable[[str], None] = print) -> dict[str, HeadCard]:
    """Train the heads of ``actions`` on their sets under ``faces_dir`` and write them and the card into ``out``."""
    torch.set_num_threads(1)  # tiny networks: one thread is as fast, and leaves the other core alone
    out.mkdir(parents=True, exist_ok=True)
    cards = read_cards(out)

    def done(card: HeadCard) -> None:  # each head is kept as soon as it is trained
        cards[card.action] = card
        write_cards(cards, out)
        log(f"{card.action}: {card.measured}")

    if {"age", "gender", "race"} & set(actions):
        samples = read_utkface(faces_dir / "utkface-dev")
        chosen, crops, x = _training_part(samples, prepared(samples, cache), False)
        folds = np.array([file_fold(s.group) for s in chosen])
        if "age" in actions:
            done(train_age(x, np.array([s.age for s in chosen], np.float32), folds, out, config))
        if "gender" in actions:
            labels = np.array([s.gender for s in chosen])
            done(train_trunk_head("gender", crops, labels, ("man", "woman"), folds, out, TRUNK_STRENGTH["gender"],
                                  "UTKFace file folds 1-4", config.seed))
        if "race" in actions:
            known = np.array([s.race >= 0 for s in chosen])
            labels = np.array([s.race for s in chosen])[known]
            done(train_classes("race", x[known], labels, RACES, folds[known], out, config, "UTKFace file folds 1-4"))
    if "emotion" in actions:
        samples = read_emotions(faces_dir / "fer2013-dev")
        chosen, crops, _ = _training_part(samples, prepared(samples, cache), False)
        folds = np.array([file_fold(s.group) for s in chosen])
        labels = np.array([s.emotion for s in chosen])
        done(train_trunk_head("emotion", crops, labels, EMOTIONS, folds, out, TRUNK_STRENGTH["emotion"],
                              "FER2013 share, file folds 1-4", config.seed))
    if "liveness" in actions:
        samples = read_liveness(faces_dir / "nuaa-dev")
        chosen, crops, _ = _training_part(samples, prepared(samples, cache), True)
        done(train_liveness(crops, np.array([s.live for s in chosen]), np.array([s.group for s in chosen]), out, config))
    return cards
