"""Training of the analysis heads (``facesift train analysis``): networks on CPU, exported to ONNX.

Age, gender and emotion are SFace's blocks after one of its intermediate maps
(:data:`facesift.analysis.features.MAP_LAYERS`), copied with their weights and fine-tuned with a new output layer:
one network for age and gender (UTKFace; its last two blocks), one for emotion (FER2013; its last four). The frozen
part of SFace runs once per augmented view of each training face (the maps are kept in the cache folder), so an
epoch costs only the fine-tuned blocks. Race is a small MLP on the embedding, liveness a linear model on the
colour texture.

Every head trains on the training part of its set only (:mod:`facesift.analysis.data`: file folds 1-4 of
UTKFace and FER2013, the first two thirds of NUAA's subjects), and every calibration (the age intervals, the
liveness threshold) comes from out-of-fold predictions inside that part, never from the held-out part.
Seeded: the same data gives the same files.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import onnx
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
from facesift.analysis.features import MAP_SHAPE, TEXTURE_DIMS, colour_texture, sface_features
from facesift.analysis.heads import MODELS_DIR, HeadCard, read_cards, write_cards

#: age bands of the interval table (upper age of each band), and the share of faces the interval must hold
AGE_BANDS = (12, 19, 39, 59, 200)
AGE_COVERAGE = 0.8
#: the liveness operating point: live faces rejected (BPCER) on the training subjects' out-of-fold scores
LIVENESS_BPCER = 0.05
#: the last of SFace's blocks that the age-gender and emotion networks copy and fine-tune
TAIL_LAST = "conv_14_relu"
#: the age network's output is a distribution over 0..AGE_MAX years; its mean is the estimate
AGE_MAX = 100
#: the spread (years) of the age label distribution: wider for older people, whose apparent age varies more
AGE_SPREAD = (1.0, 0.1)


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
    """A linear classifier (one logit) on features standardised with the training set's mean and spread (kept inside)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))
        self.linear = nn.Linear(len(mean), 1)

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
def _logit_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(output[:, 0], target.float())


def _class_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(output, target.long(), label_smoothing=0.1)


def train_classes(action: str, x: np.ndarray, labels: np.ndarray, names: tuple[str, ...], folds: np.ndarray, out: Path,
                  config: HeadConfig, source: str) -> HeadCard:
    binary = len(names) == 2
    make = lambda: EmbeddingHead(1 if binary else len(names), config)  # noqa: E731
    loss = _logit_loss if binary else _class_loss
    oof = _out_of_fold(make, x, labels, folds, loss, config)
    predicted = (oof[:, 0] > 0).astype(int) if binary else oof.argmax(1)
    _export(_fit(make(), x, labels, loss, config), (x.shape[1],), out / f"{action}.onnx")
    return HeadCard(action, f"{action}.onnx", "embedding", names if not binary else (),
                    training=f"MLP on SFace embeddings; {source} ({len(x)} faces)",
                    measured={"out_of_fold_accuracy": round(float(np.mean(predicted == labels)), 4)})


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
    return HeadCard("liveness", "liveness.onnx", "texture", calibration={"threshold": round(threshold, 4), "operating_point": point},
                    training=f"linear classifier on colour-texture (HSV + YCrCb uniform LBP) of the aligned crop; NUAA subjects "
                    f"{', '.join(sorted(set(subjects)))} ({len(crops)} frames)",
                    measured={"out_of_fold_apcer": round(apcer, 4), "out_of_fold_bpcer": LIVENESS_BPCER})


# --- the fine-tuned networks on SFace's map (age and gender; emotion) -------------------------------------------
@dataclass(frozen=True)
class TailConfig:
    """How a fine-tuned network trains (chosen on UTKFace / FER2013 file fold 1 with folds 2-4 for training, docs/analyze.md)."""

    #: the SFace map it reads (of MAP_LAYERS); it fine-tunes SFace's blocks after that layer
    layer: str = "conv_12_relu"
    epochs: int = 15
    batch: int = 64
    lr: float = 3e-4
    head_lr: float = 3e-3
    weight_decay: float = 1e-2
    dropout: float = 0.3
    #: mixup of two faces' maps and labels (Beta(mixup, mixup)); 0 turns it off
    mixup: float = 0.0
    #: augmented views of each training face (the first the face itself, the second its mirror image)
    views: int = 6
    seed: int = 0


AGE_GENDER_CONFIG = TailConfig()
EMOTION_CONFIG = TailConfig(layer="conv_10_relu", epochs=12, mixup=0.4)


class TailNetwork(nn.Module):
    """SFace's blocks after ``layer`` up to :data:`TAIL_LAST` (copied with SFace's weights), their output averaged
    over the face and over each of its quarters, and one linear layer."""

    def __init__(self, layer: str, outputs: int, dropout: float) -> None:
        super().__init__()
        from facesift.training.sface import sface_from_onnx

        sface = sface_from_onnx()
        names = list(sface._modules)
        self.blocks = nn.Sequential(*[sface._modules[n] for n in names[names.index(layer) + 1 : names.index(TAIL_LAST) + 1]])
        self.dropout = nn.Dropout(dropout)
        channels = [m for m in self.blocks if isinstance(m, nn.Conv2d)][-1].out_channels
        self.linear = nn.Linear(5 * channels, outputs)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        out = self.blocks(maps)
        half = out.shape[2] // 2
        sides = (slice(None, half), slice(half, None))
        parts = [out] + [out[:, :, rows, cols] for rows in sides for cols in sides]
        return self.linear(self.dropout(torch.cat([p.mean((2, 3)) for p in parts], 1)))


class AgeGenderOutputs(nn.Module):
    """The exported age-gender network: ``age`` (N, 1) the mean of the predicted age distribution in years,
    ``gender`` (N, 1) the logit of "woman"."""

    def __init__(self, network: TailNetwork) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("years", torch.arange(AGE_MAX + 1, dtype=torch.float32))

    def forward(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.network(maps)
        age = (torch.softmax(out[:, : AGE_MAX + 1], 1) * self.years).sum(1, keepdim=True)
        return age, out[:, AGE_MAX + 1 :]


def _augment(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A face as another photo of it might show it: turned, scaled, shifted a little, maybe mirrored, other contrast and light."""
    matrix = cv2.getRotationMatrix2D((56, 56), rng.uniform(-10, 10), rng.uniform(0.92, 1.08))
    matrix[:, 2] += rng.uniform(-5, 5, 2)
    out = cv2.warpAffine(crop, matrix, (112, 112), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    mean = out.mean()
    return np.clip((out - mean) * rng.uniform(0.75, 1.25) + mean + rng.uniform(-25, 25), 0, 255)


def augmented_maps(crops: np.ndarray, layer: str, views: int, seed: int, folder: Path, log: Callable[[str], None] = print) -> np.ndarray:
    """(N, views, *MAP_SHAPE) fp16 SFace ``layer`` maps of each crop (view 0), its mirror image (view 1) and random
    augmentations, kept in ``folder`` (a memory-mapped file, reused when the same crops come again)."""
    key = zlib.crc32(np.ascontiguousarray(crops).tobytes())
    path = folder / f"analysis-maps-{layer}-{len(crops)}-{key:08x}-{views}-{seed}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    maps = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=(len(crops), views, *MAP_SHAPE))
    rng = np.random.default_rng(seed)
    for view in range(views):
        for start in range(0, len(crops), 256):
            batch = crops[start : start + 256]
            if view == 1:
                batch = batch[:, :, ::-1]
            elif view > 1:
                batch = np.stack([_augment(c, rng) for c in batch])
            maps[start : start + len(batch), view] = sface_features(batch, [layer])[1][layer]
        log(f"SFace maps of {len(crops)} faces: view {view + 1} of {views}")
    maps.flush()
    del maps
    partial.replace(path)
    return np.load(path, mmap_mode="r")


def random_views(maps: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """A float32 batch of the faces ``rows`` of (N, views, ...) ``maps``, each in one of its views drawn at random."""
    views = rng.integers(0, maps.shape[1], len(rows))
    return torch.from_numpy(np.stack([maps[r, v] for r, v in zip(rows, views, strict=True)]).astype(np.float32))


def _train_tail(network: TailNetwork, maps: np.ndarray, rows: np.ndarray, loss: Callable, config: TailConfig) -> TailNetwork:
    """Fine-tune ``network`` on the faces ``rows`` of ``maps``, one random view of each face an epoch;
    ``loss(output, rows)`` scores a batch (with mixup, two losses are mixed)."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimiser = torch.optim.AdamW([{"params": network.blocks.parameters(), "lr": config.lr},
                                   {"params": network.linear.parameters(), "lr": config.head_lr}], weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(rows) // config.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, [config.lr, config.head_lr], total_steps=steps, pct_start=0.1)
    network.train()
    for _ in range(config.epochs):
        order = rng.permutation(rows)
        for start in range(0, len(order), config.batch):
            chosen = np.sort(order[start : start + config.batch])
            batch = random_views(maps, chosen, rng)
            if config.mixup > 0:
                share = float(rng.beta(config.mixup, config.mixup))
                partner = rng.permutation(len(chosen))
                output = network(share * batch + (1 - share) * batch[partner])
                value = share * loss(output, chosen) + (1 - share) * loss(output, chosen[partner])
            else:
                value = loss(network(batch), chosen)
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
            schedule.step()
    return network.eval()


def tail_outputs(network: nn.Module, maps: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The network's raw outputs on the faces themselves (view 0), as inference sees them."""
    with torch.no_grad():
        return np.concatenate([network(torch.from_numpy(np.asarray(maps[rows[s : s + 256], 0], np.float32))).numpy()
                               for s in range(0, len(rows), 256)])


def _export_tail(model: nn.Module, outputs: list[str], path: Path) -> None:
    """ONNX (input: a map) with the weights stored fp16 (:func:`facesift.onnx_repair.store_weights`; loading folds them
    back to fp32)."""
    from facesift.onnx_repair import store_weights

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: no onnxscript needed
        torch.onnx.export(model.eval(), torch.zeros(1, *MAP_SHAPE), buffer, dynamo=False, input_names=["map"], output_names=outputs,
                          dynamic_axes={"map": {0: "n"}, **{name: {0: "n"} for name in outputs}}, opset_version=17)
    path.write_bytes(store_weights(onnx.load_from_string(buffer.getvalue()), "fp16").SerializeToString())


def _age_gender_loss(ages: torch.Tensor, women: torch.Tensor) -> Callable:
    years = torch.arange(AGE_MAX + 1, dtype=torch.float32)

    def loss(output: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        age = ages[rows]
        spread = AGE_SPREAD[0] + AGE_SPREAD[1] * age
        target = torch.softmax(-0.5 * ((years[None] - age[:, None]) / spread[:, None]) ** 2, 1)
        log_p = torch.log_softmax(output[:, : AGE_MAX + 1], 1)
        expected = (log_p.exp() * years).sum(1)
        age_loss = -(target * log_p).sum(1).mean() + 0.05 * (expected - age).abs().mean()
        return age_loss + nn.functional.binary_cross_entropy_with_logits(output[:, AGE_MAX + 1], women[rows])

    return loss


def _age_bands(predicted: np.ndarray, ages: np.ndarray) -> list[list[float]]:
    """Per band of the *predicted* age, how far below and above the truth fell for AGE_COVERAGE of the faces."""
    bands, low = [], -1
    for upper in AGE_BANDS:
        chosen = (predicted > low) & (predicted <= upper)
        residual = ages[chosen] - predicted[chosen] if chosen.sum() >= 10 else ages - predicted
        below = float(-np.quantile(residual, (1 - AGE_COVERAGE) / 2))
        above = float(np.quantile(residual, (1 + AGE_COVERAGE) / 2))
        bands.append([upper, round(max(below, 0.5), 2), round(max(above, 0.5), 2)])
        low = upper
    return bands


def train_age_gender(maps: np.ndarray, ages: np.ndarray, women: np.ndarray, folds: np.ndarray, out: Path,
                     config: TailConfig = AGE_GENDER_CONFIG, log: Callable[[str], None] = print) -> tuple[HeadCard, HeadCard]:
    """One network for age and gender; its age intervals and measured numbers come from out-of-fold predictions."""
    torch_ages, torch_women = torch.as_tensor(ages, dtype=torch.float32), torch.as_tensor(women, dtype=torch.float32)
    loss = _age_gender_loss(torch_ages, torch_women)
    predicted_age, said_woman = np.zeros(len(ages), np.float32), np.zeros(len(ages), bool)
    for fold in np.unique(folds):
        network = _train_tail(TailNetwork(config.layer, AGE_MAX + 2, config.dropout), maps, np.flatnonzero(folds != fold), loss, config)
        rows = np.flatnonzero(folds == fold)
        with torch.no_grad():
            age, gender = AgeGenderOutputs(network)(torch.from_numpy(np.asarray(maps[rows, 0], np.float32)))
        predicted_age[rows], said_woman[rows] = age[:, 0].numpy(), gender[:, 0].numpy() > 0
        log(f"age and gender, fold {fold} held out: MAE {np.abs(predicted_age[rows] - ages[rows]).mean():.2f} years, "
            f"gender {np.mean(said_woman[rows] == women[rows]):.2%}")
    network = _train_tail(TailNetwork(config.layer, AGE_MAX + 2, config.dropout), maps, np.arange(len(ages)), loss, config)
    _export_tail(AgeGenderOutputs(network), ["age", "gender"], out / "age-gender.onnx")
    training = (f"SFace's blocks after {config.layer}, fine-tuned ({config.epochs} epochs, {config.views} augmented views); "
                f"UTKFace file folds 1-4 ({len(ages)} faces)")
    age_card = HeadCard("age", "age-gender.onnx", config.layer, output="age", training=training,
                        calibration={"bands": _age_bands(predicted_age, ages), "coverage": AGE_COVERAGE},
                        measured={"out_of_fold_mae": round(float(np.abs(predicted_age - ages).mean()), 2)})
    gender_card = HeadCard("gender", "age-gender.onnx", config.layer, output="gender", training=training,
                           measured={"out_of_fold_accuracy": round(float(np.mean(said_woman == women)), 4)})
    return age_card, gender_card


def train_emotion(maps: np.ndarray, labels: np.ndarray, out: Path, config: TailConfig = EMOTION_CONFIG) -> HeadCard:
    """The emotion network (7 logits) on all of the training part; measured on held-out folds by ``evaluate analyze``."""
    targets = torch.as_tensor(labels, dtype=torch.long)

    def loss(output: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return _class_loss(output, targets[rows])

    network = _train_tail(TailNetwork(config.layer, len(EMOTIONS), config.dropout), maps, np.arange(len(labels)), loss, config)
    _export_tail(network, ["emotion"], out / "emotion.onnx")
    return HeadCard("emotion", "emotion.onnx", config.layer, EMOTIONS, output="emotion",
                    training=f"SFace's blocks after {config.layer}, fine-tuned ({config.epochs} epochs, {config.views} augmented views, "
                    f"mixup {config.mixup}); FER2013 share, file folds 1-4 ({len(labels)} faces)")


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
                config: HeadConfig = HeadConfig(), log: Callable[[str], None] = print,
                tails: tuple[TailConfig, TailConfig] = (AGE_GENDER_CONFIG, EMOTION_CONFIG)) -> dict[str, HeadCard]:
    """Train the heads of ``actions`` on their sets under ``faces_dir`` and write them and the card into ``out``.
    Age and gender are one network: asking for either trains both. ``tails``: the age-gender and emotion
    networks' settings."""
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    out.mkdir(parents=True, exist_ok=True)
    cards = read_cards(out)
    with tempfile.TemporaryDirectory() as scratch:
        maps_folder = Path(cache) if cache is not None else Path(scratch)

        def done(card: HeadCard) -> None:  # each head is kept as soon as it is trained
            cards[card.action] = card
            write_cards(cards, out)
            log(f"{card.action}: {card.measured or 'trained'}")

        if {"age", "gender", "race"} & set(actions):
            samples = read_utkface(faces_dir / "utkface-dev")
            chosen, crops, x = _training_part(samples, prepared(samples, cache), False)
            folds = np.array([file_fold(s.group) for s in chosen])
            if {"age", "gender"} & set(actions):
                maps = augmented_maps(crops, tails[0].layer, tails[0].views, tails[0].seed, maps_folder, log)
                for card in train_age_gender(maps, np.array([s.age for s in chosen], np.float32), np.array([s.gender for s in chosen]),
                                             folds, out, tails[0], log):
                    done(card)
            if "race" in actions:
                known = np.array([s.race >= 0 for s in chosen])
                labels = np.array([s.race for s in chosen])[known]
                done(train_classes("race", x[known], labels, RACES, folds[known], out, config, "UTKFace file folds 1-4"))
        if "emotion" in actions:
            samples = read_emotions(faces_dir / "fer2013-dev")
            chosen, crops, _ = _training_part(samples, prepared(samples, cache), False)
            maps = augmented_maps(crops, tails[1].layer, tails[1].views, tails[1].seed, maps_folder, log)
            done(train_emotion(maps, np.array([s.emotion for s in chosen]), out, tails[1]))
        if "liveness" in actions:
            samples = read_liveness(faces_dir / "nuaa-dev")
            chosen, crops, _ = _training_part(samples, prepared(samples, cache), True)
            done(train_liveness(crops, np.array([s.live for s in chosen]), np.array([s.group for s in chosen]), out, config))
    return cards
