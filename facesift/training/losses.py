"""Face-recognition losses, all with one signature: ``loss(embeddings, labels, images=None) -> scalar``.

Classification heads (they own a weight vector per training identity):
- ``softmax``: a plain linear classifier with cross-entropy.
- ``sphereface`` / ``cosface`` / ``arcface``: the combined margin ``s * (cos(m1 * theta + m2) - m3)`` on the
  target logit (SphereFace m1, ArcFace m2, CosFace m3; Deng et al. 2019), weights and features normalised.
- ``adaface``: the margin follows the feature norm, a proxy of image quality (Kim et al. 2022).
- ``quality``: an ArcFace margin that grows with the input's mean Laplacian energy, so blurred, low-resolution
  inputs get a small margin and sharp ones the full one.
Metric losses (no parameters): ``triplet`` (batch-hard mining), ``contrastive`` (Siamese pairs).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SoftmaxLoss(nn.Module):
    def __init__(self, dims: int, classes: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(dims, classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        return F.cross_entropy(self.classifier(embeddings), labels)


class MarginLoss(nn.Module):
    """Normalised weights and features; subclasses turn the target's angle into its margin-penalised logit."""

    def __init__(self, dims: int, classes: int, scale: float = 64.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, dims))
        nn.init.normal_(self.weight, std=0.01)
        self.scale = scale

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings), F.normalize(self.weight))

    def target_logit(self, cosine: torch.Tensor, embeddings: torch.Tensor, images: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled logits with the margin applied to each sample's own class."""
        cosines = self.cosines(embeddings)
        rows = torch.arange(len(labels), device=labels.device)
        target = self.target_logit(cosines[rows, labels], embeddings, images)
        cosines = cosines.clone()
        cosines[rows, labels] = target
        return self.scale * cosines

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        return F.cross_entropy(self.logits(embeddings, labels, images), labels)


def combined_margin(cosine: torch.Tensor, m1: float | torch.Tensor, m2: float | torch.Tensor, m3: float | torch.Tensor) -> torch.Tensor:
    """``cos(m1 * theta + m2) - m3``, continued past ``m1 * theta + m2 = pi`` as ``cos(theta)`` shifted down,
    so the target logit keeps falling as the angle grows (the plain formula would rise again)."""
    theta = torch.acos(cosine.clamp(-1 + 1e-7, 1 - 1e-7))
    m1, m2, m3 = (torch.as_tensor(m, dtype=cosine.dtype, device=cosine.device) for m in (m1, m2, m3))
    limit = ((math.pi - m2) / m1).clamp(max=math.pi)
    inside = torch.cos(m1 * theta + m2) - m3
    beyond = cosine - torch.cos(limit) - 1 - m3
    return torch.where(theta <= limit, inside, beyond)


class CombinedMarginLoss(MarginLoss):
    """SphereFace (m1), ArcFace (m2) and CosFace (m3) in one formula."""

    def __init__(self, dims: int, classes: int, scale: float = 64.0, m1: float = 1.0, m2: float = 0.5, m3: float = 0.0) -> None:
        super().__init__(dims, classes, scale)
        self.m1, self.m2, self.m3 = m1, m2, m3

    def target_logit(self, cosine, embeddings, images):
        return combined_margin(cosine, self.m1, self.m2, self.m3)


class AdaFaceLoss(MarginLoss):
    """AdaFace: with ``z`` the batch-standardised feature norm clipped to [-1, 1] (``h`` sets the spread),
    the target logit is ``cos(theta - m * z) - (m * z + m)``. Low-norm (poor) samples (z = -1) get ArcFace's
    ``cos(theta + m)``, which weighs their hard cases less; high-norm (good) ones (z = 1) get
    ``cos(theta - m) - 2m``, which weighs hard cases more."""

    def __init__(self, dims: int, classes: int, scale: float = 64.0, margin: float = 0.4, h: float = 0.333, momentum: float = 0.01) -> None:
        super().__init__(dims, classes, scale)
        self.margin, self.h, self.momentum = margin, h, momentum
        self.register_buffer("norm_mean", torch.tensor(20.0))
        self.register_buffer("norm_std", torch.tensor(100.0))

    def norm_score(self, embeddings: torch.Tensor) -> torch.Tensor:
        norms = embeddings.detach().norm(dim=1).clamp(0.001, 100)
        if self.training and len(norms) > 1:
            self.norm_mean.mul_(1 - self.momentum).add_(self.momentum * norms.mean())
            self.norm_std.mul_(1 - self.momentum).add_(self.momentum * norms.std())
        return ((norms - self.norm_mean) / (self.norm_std + 1e-3) * self.h).clamp(-1, 1)

    def target_logit(self, cosine, embeddings, images):
        z = self.norm_score(embeddings)
        return combined_margin(cosine, 1.0, -self.margin * z, self.margin * z + self.margin)


def laplacian_energy(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute Laplacian of each image's grey levels (N, 3, H, W in 0-255): high when sharp."""
    grey = images.mean(dim=1, keepdim=True)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=images.dtype, device=images.device)
    return F.conv2d(grey, kernel.view(1, 1, 3, 3)).abs().mean(dim=(1, 2, 3))


class QualityMarginLoss(MarginLoss):
    """ArcFace whose margin is ``m_min + (m_max - m_min) * q``, ``q = E / (E + half)`` with ``E`` the input's
    mean Laplacian energy: a 7 px face upsampled to 112 has little energy and gets about ``m_min``."""

    def __init__(self, dims: int, classes: int, scale: float = 64.0, m_min: float = 0.1, m_max: float = 0.5, half: float = 8.0) -> None:
        super().__init__(dims, classes, scale)
        self.m_min, self.m_max, self.half = m_min, m_max, half

    def margins(self, images: torch.Tensor) -> torch.Tensor:
        energy = laplacian_energy(images)
        return self.m_min + (self.m_max - self.m_min) * energy / (energy + self.half)

    def target_logit(self, cosine, embeddings, images):
        if images is None:
            raise ValueError("the quality-adaptive margin needs the input images")
        return combined_margin(cosine, 1.0, self.margins(images), 0.0)


class TripletLoss(nn.Module):
    """Batch-hard triplets on cosine distance: each anchor against its farthest positive and nearest negative."""

    def __init__(self, dims: int = 0, classes: int = 0, margin: float = 0.3) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        normed = F.normalize(embeddings)
        distance = 1 - normed @ normed.T
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        hardest_positive = distance.masked_fill(~same | eye, -1.0).max(dim=1).values
        hardest_negative = distance.masked_fill(same, 3.0).min(dim=1).values
        valid = (same & ~eye).any(dim=1) & (~same).any(dim=1)
        if not valid.any():
            raise ValueError("triplet loss needs at least two images of a person and one other person in the batch")
        return F.relu(hardest_positive - hardest_negative + self.margin)[valid].mean()


class ContrastiveLoss(nn.Module):
    """Siamese contrastive loss on every pair of the batch: ``d^2`` for same-person pairs,
    ``max(0, margin - d)^2`` for different-person pairs, ``d`` the distance of normalised embeddings."""

    def __init__(self, dims: int = 0, classes: int = 0, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        normed = F.normalize(embeddings)
        rows, cols = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
        distance = (normed[rows] - normed[cols]).norm(dim=1)
        same = (labels[rows] == labels[cols]).float()
        return (same * distance**2 + (1 - same) * F.relu(self.margin - distance) ** 2).mean()


LOSSES = {
    "softmax": SoftmaxLoss,
    "sphereface": lambda dims, classes, **kw: CombinedMarginLoss(dims, classes, **{"m1": 1.35, "m2": 0.0, "m3": 0.0, **kw}),
    "cosface": lambda dims, classes, **kw: CombinedMarginLoss(dims, classes, **{"m1": 1.0, "m2": 0.0, "m3": 0.35, **kw}),
    "arcface": lambda dims, classes, **kw: CombinedMarginLoss(dims, classes, **{"m1": 1.0, "m2": 0.5, "m3": 0.0, **kw}),
    "adaface": AdaFaceLoss,
    "quality": QualityMarginLoss,
    "triplet": TripletLoss,
    "contrastive": ContrastiveLoss,
}


def create_loss(name: str, dims: int, classes: int, **options) -> nn.Module:
    """A loss by name (see :data:`LOSSES`); ``options`` override its margins and scale."""
    try:
        factory = LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
    return factory(dims, classes, **options)
