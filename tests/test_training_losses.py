"""Each loss: gradients reach the embeddings (and the head), and its margin follows its formula on hand-made inputs."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the train extra is not installed: pip install 'facesift[train]'")

from facesift.training.losses import (  # noqa: E402
    LOSSES,
    AdaFaceLoss,
    CombinedMarginLoss,
    ContrastiveLoss,
    QualityMarginLoss,
    TripletLoss,
    combined_margin,
    create_loss,
    laplacian_energy,
)


def batch(classes: int = 4, per_class: int = 3, dims: int = 8):
    torch.manual_seed(0)
    embeddings = torch.randn(classes * per_class, dims, requires_grad=True)
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = torch.rand(classes * per_class, 3, 16, 16) * 255
    return embeddings, labels, images


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_flow(name):
    embeddings, labels, images = batch()
    loss = create_loss(name, 8, 4)
    value = loss(embeddings, labels, images)
    value.backward()
    assert torch.isfinite(value) and value > 0
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    for parameter in loss.parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="arcface"):
        create_loss("nope", 8, 4)


def angles(*degrees):
    return torch.cos(torch.tensor([math.radians(d) for d in degrees], dtype=torch.float64))


def test_arcface_adds_the_angle():
    cos = angles(30.0, 60.0)
    expected = torch.cos(torch.acos(cos) + 0.5)
    assert torch.allclose(combined_margin(cos, 1.0, 0.5, 0.0), expected)


def test_cosface_subtracts_from_the_cosine():
    cos = torch.tensor([0.9, 0.2, -0.3], dtype=torch.float64)
    assert torch.allclose(combined_margin(cos, 1.0, 0.0, 0.35), cos - 0.35)


def test_sphereface_multiplies_the_angle():
    cos = angles(20.0, 50.0)
    assert torch.allclose(combined_margin(cos, 1.35, 0.0, 0.0), torch.cos(1.35 * torch.acos(cos)))


def test_margin_keeps_falling_past_pi():
    """Past m1 * theta + m2 = pi the plain formula would rise again; ours keeps falling, without a jump."""
    cos = angles(*range(100, 181, 2))
    target = combined_margin(cos, 1.0, 0.5, 0.0)
    assert (target[1:] < target[:-1]).all()
    limit = math.pi - 0.5
    below, above = combined_margin(torch.cos(torch.tensor([limit - 1e-6, limit + 1e-6], dtype=torch.float64)), 1.0, 0.5, 0.0)
    assert abs(float(below - above)) < 1e-4


def test_head_changes_only_the_target_logit():
    head = CombinedMarginLoss(4, 3, scale=10.0, m1=1.0, m2=0.0, m3=0.35)
    embeddings, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    cosines = head.cosines(embeddings)
    logits = head.logits(embeddings, labels)
    expected = 10.0 * cosines
    expected[torch.arange(5), labels] -= 10.0 * 0.35
    assert torch.allclose(logits, expected, atol=1e-5)


def test_adaface_margin_follows_the_feature_norm():
    head = AdaFaceLoss(2, 1, margin=0.4, h=1.0).eval()  # eval: the norm statistics stay as set
    head.norm_mean.fill_(10.0)
    head.norm_std.fill_(1.0)
    low, high = torch.tensor([[5.0, 0.0]]), torch.tensor([[15.0, 0.0]])  # z = -1 and z = +1 after clipping
    assert torch.allclose(head.norm_score(torch.cat([low, high])), torch.tensor([-1.0, 1.0]))
    cos = torch.tensor([math.cos(1.0)])
    assert torch.allclose(head.target_logit(cos, low, None), torch.cos(torch.tensor([1.0 + 0.4])), atol=1e-5)
    assert torch.allclose(head.target_logit(cos, high, None), torch.cos(torch.tensor([1.0 - 0.4])) - 0.8, atol=1e-5)


def test_quality_margin_grows_with_laplacian_energy():
    head = QualityMarginLoss(2, 1, m_min=0.1, m_max=0.5, half=8.0)
    flat = torch.full((1, 3, 16, 16), 128.0)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 255.0
    sharp = checker.expand(1, 3, 16, 16)
    assert float(laplacian_energy(flat)) == 0.0
    assert float(laplacian_energy(sharp)) == pytest.approx(4 * 255.0)
    margins = head.margins(torch.cat([flat, sharp]))
    assert float(margins[0]) == pytest.approx(0.1)
    energy = 4 * 255.0
    assert float(margins[1]) == pytest.approx(0.1 + 0.4 * energy / (energy + 8.0))
    cos = torch.tensor([math.cos(0.7)])
    assert float(head.target_logit(cos, None, flat)) == pytest.approx(math.cos(0.8), abs=1e-5)


def test_quality_margin_needs_images():
    with pytest.raises(ValueError, match="images"):
        QualityMarginLoss(2, 1).target_logit(torch.tensor([0.5]), None, None)


def test_triplet_uses_the_hardest_positive_and_negative():
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [-1.0, 0.0]])  # people 0, 0, 1, 1
    labels = torch.tensor([0, 0, 1, 1])
    n = torch.nn.functional.normalize(e)
    d = 1 - n @ n.T
    expected = torch.stack([
        torch.relu(d[0, 1] - d[0, 2] + 0.3),
        torch.relu(d[1, 0] - min(d[1, 2], d[1, 3]) + 0.3),
        torch.relu(d[2, 3] - min(d[2, 0], d[2, 1]) + 0.3),
        torch.relu(d[3, 2] - min(d[3, 0], d[3, 1]) + 0.3),
    ]).mean()
    assert torch.allclose(TripletLoss(margin=0.3)(e, labels), expected)


def test_triplet_refuses_a_batch_without_positives():
    with pytest.raises(ValueError, match="two images"):
        TripletLoss()(torch.randn(3, 4), torch.tensor([0, 1, 2]))


def test_contrastive_pulls_same_and_pushes_different():
    e = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    d01, d02, d12 = math.dist([1, 0], [0.6, 0.8]), math.dist([1, 0], [0, 1]), math.dist([0.6, 0.8], [0, 1])
    expected = (d01**2 + max(0, 1.0 - d02) ** 2 + max(0, 1.0 - d12) ** 2) / 3
    assert float(ContrastiveLoss(margin=1.0)(e, labels)) == pytest.approx(expected, rel=1e-5)
