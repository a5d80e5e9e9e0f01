"""A small face super-resolution network (7 to 28 px -> 112 px) trained to keep identity.

The network refines a bicubic upsampling with a learned residual (so any input size works). Losses: L1 on
pixels, a perceptual L1 on SFace's early feature maps (no ImageNet VGG ships offline, SFace's own features
serve), and identity: 1 - cos between SFace's embedding of the output and of the original full-resolution
face (precomputed). No adversarial term: on a CPU budget it costs more than it gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesift.resolution import shrink_and_back
from facesift.training.data import CropSet, TrainingAugmentation
from facesift.training.sface import export_onnx, sface_from_onnx
from facesift.training.trainer import EvalPairs, TrainConfig, Trainer, degrade, embed, two_fold_accuracy

#: the sizes (px across) training faces are shrunk to: the low-resolution sweep's 28, 14 and 7 px and between
SR_SIZES = (7, 10, 14, 20, 28)
#: SFace layers up to here give the perceptual features (56x56 maps, 64 channels)
PERCEPTUAL_LAYERS = 7


class FaceSR(nn.Module):
    """Bicubic-upsampled input (N, 3, 112, 112, 0-255) plus a residual from ``blocks`` 3x3 conv layers."""

    def __init__(self, channels: int = 32, blocks: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.PReLU(channels)]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels)]
        layers.append(nn.Conv2d(channels, 3, 3, padding=1))
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 127.5 * self.body(x / 127.5 - 1.0)


class SuperResTrainer(Trainer):
    """Trains :class:`FaceSR`; ``config.loss_options`` may set ``pixel``, ``perceptual``, ``identity`` weights."""

    def __init__(self, config: TrainConfig, train: CropSet, held_out: EvalPairs | None) -> None:
        super().__init__(config, train, held_out)
        if train.teacher is None:
            raise ValueError("the identity loss needs the teacher's embeddings: prepare the crops with teacher=True")
        self.model = FaceSR()
        self.teacher = sface_from_onnx().eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.features = self.teacher[:PERCEPTUAL_LAYERS]
        self.weights = {"pixel": 1.0, "perceptual": 0.1, "identity": 1.0} | dict(config.loss_options)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def parameter_groups(self) -> list[dict]:
        return [{"params": list(self.model.parameters()), "lr": self.config.lr}]

    def degradation(self) -> TrainingAugmentation:
        # only mirror images here: step_loss makes the low-resolution input from the clean crop itself
        return TrainingAugmentation(low_res_probability=0.0, blur_probability=0.0, jpeg_probability=0.0, noise_probability=0.0)

    def step_loss(self, batch) -> tuple[torch.Tensor, dict[str, float]]:
        _, _, target, clean, _ = batch
        rng = np.random.default_rng(self.config.seed + int(self.scheduler.last_epoch))
        hr = clean.permute(0, 2, 3, 1).numpy().astype(np.uint8)
        lr = np.stack([shrink_and_back(c, int(rng.choice(SR_SIZES))) for c in hr])
        inputs = torch.from_numpy(np.ascontiguousarray(lr.transpose(0, 3, 1, 2), dtype=np.float32))
        output = self.model(inputs)
        pixel = F.l1_loss(output, clean) / 255.0
        perceptual = F.l1_loss(self.features(output), self.features(clean))
        identity = (1 - F.cosine_similarity(self.teacher(output), target)).mean()
        w = self.weights
        loss = w["pixel"] * pixel + w["perceptual"] * perceptual + w["identity"] * identity
        parts = {"loss": loss, "pixel": pixel, "perceptual": perceptual, "identity": identity}
        return loss, {key: float(value.detach()) for key, value in parts.items()}

    def restore(self, crops: np.ndarray, size: int) -> np.ndarray:
        """Shrink each crop to ``size`` and restore it with the network (the evaluation's probes)."""
        upsampled = degrade(crops, size)
        self.model.eval()
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(upsampled.transpose(0, 3, 1, 2), dtype=np.float32)))
        self.model.train()
        return np.clip(out.numpy().transpose(0, 2, 3, 1), 0, 255).round().astype(np.uint8)

    def evaluate(self) -> dict[str, float]:
        """SFace accuracy with probes restored by the network, full-resolution gallery."""
        gallery = embed(self.teacher, self.held_out.a)
        return {
            f"acc@{size}": round(
                two_fold_accuracy((gallery * embed(self.teacher, self.restore(self.held_out.b, size))).sum(1), self.held_out.same), 4
            )
            for size in SR_SIZES
        }

    def export(self) -> Path:
        return export_onnx(self.model, self.output / f"{self.config.name}.onnx")
