"""The identity split, the on-the-fly degradation, balanced batches, and a two-step training run with resume."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra is not installed: pip install 'facesift[train]'")

from facesift.training.data import (  # noqa: E402
    BalancedIdentitySampler,
    CropSet,
    FaceDataset,
    TrainingAugmentation,
    TrainingDataError,
    celeba300_split,
    identity_folders,
    prepare_crops,
)
from facesift.training.trainer import EmbedderTrainer, TrainConfig, degrade, prepare_pairs, two_fold_accuracy  # noqa: E402


def test_split_keeps_test_people_out_of_training(faces):
    split = celeba300_split(faces)
    assert len(split.test_pairs) == 3000 and {p.fold for p in split.test_pairs} == set(range(5, 10))
    test_people = {path.parent.name for pair in split.test_pairs for path in (pair.a, pair.b)}
    celeba_train = {f.name for f in split.train_folders if f.parent.name == "celeba300"}
    assert len(celeba_train) == 150 and not celeba_train & test_people
    assert {f.parent.name for f in split.train_folders} == {"celeba300", "pins90", "orl", "yale", "johns"}


def test_split_needs_the_pairs_file(tmp_path):
    with pytest.raises(TrainingDataError, match="celeba300-pairs.txt"):
        celeba300_split(tmp_path)


def test_identity_folders_refuses_an_empty_folder(tmp_path):
    with pytest.raises(TrainingDataError, match="no identity folders"):
        identity_folders([tmp_path])


def laplacian(crop: np.ndarray) -> float:
    import cv2

    return float(np.abs(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F)).mean())


@pytest.fixture(scope="module")
def johns(faces, tmp_path_factory):
    """Aligned crops (with teacher embeddings) of four people, four photos each."""
    folders = identity_folders([faces / "johns"])[:4]
    return prepare_crops(folders, tmp_path_factory.mktemp("crops"), per_identity=4)


@pytest.fixture(scope="module")
def held_out(faces):
    """Four held-out pairs (two same, two different) as aligned crops."""
    return prepare_pairs(list(celeba300_split(faces).test_pairs), 4)


def test_prepared_crops_are_cached_with_teacher_embeddings(johns, faces, tmp_path):
    assert johns.crops.shape == (16, 112, 112, 3) and johns.teacher.shape == (16, 2, 128)
    assert len(johns.identities) == 4 and np.bincount(johns.labels).tolist() == [4, 4, 4, 4]
    johns.save(tmp_path / "c.npz")
    again = CropSet.load(tmp_path / "c.npz")
    assert np.array_equal(again.crops, johns.crops) and again.identities == johns.identities


def test_degradation_shrinks_within_the_range(johns):
    shrink = TrainingAugmentation(
        sizes=(7, 14), low_res_probability=1.0, blur_probability=0, jpeg_probability=0, noise_probability=0, flip_probability=0
    )
    rng = random.Random(1)
    clean = johns.crops[0]
    for _ in range(5):
        out, flipped, size = shrink(clean, rng)
        assert out.shape == clean.shape and out.dtype == np.uint8 and not flipped and 7 <= size <= 14
        assert laplacian(out) < 0.5 * laplacian(clean)


def test_degradation_flips_and_reports_it(johns):
    flip = TrainingAugmentation(low_res_probability=0, blur_probability=0, jpeg_probability=0, noise_probability=0, flip_probability=1.0)
    out, flipped, size = flip(johns.crops[0], random.Random(0))
    assert flipped and size == 112 and np.array_equal(out, johns.crops[0][:, ::-1])
    image, label, target, clean, _ = FaceDataset(johns, flip)[0]
    assert torch.equal(target, torch.from_numpy(johns.teacher[0, 1]))  # the teacher's view of the mirrored face
    assert torch.equal(image, clean)


def test_balanced_sampler_gives_p_people_by_k_images(johns):
    sampler = BalancedIdentitySampler(johns.labels, 2, 3, seed=0)
    indices = list(sampler)
    assert len(indices) == len(sampler)
    for start in range(0, len(indices), 6):
        labels = johns.labels[indices[start : start + 6]]
        assert sorted(np.bincount(labels, minlength=4).tolist()) == [0, 0, 3, 3]


def test_sampler_refuses_too_few_people(johns):
    with pytest.raises(TrainingDataError, match="cannot fill"):
        BalancedIdentitySampler(johns.labels, 5, 2)


def test_two_fold_accuracy_on_separable_scores():
    same = np.array([True, False] * 10)
    assert two_fold_accuracy(np.where(same, 0.8, 0.1), same) == 1.0
    assert degrade(np.zeros((1, 112, 112, 3), np.uint8), 14).shape == (1, 112, 112, 3)


def test_training_steps_checkpoint_and_resume(johns, held_out, tmp_path):
    config = TrainConfig(
        output=str(tmp_path), epochs=1, identities_per_batch=2, images_per_identity=2, steps_per_epoch=2, eval_sizes=(112, 14), threads=2
    )
    history = EmbedderTrainer(config, johns, held_out).fit(progress=False)
    assert [h["epoch"] for h in history] == [0, 1]
    assert history[1]["cpu_s_per_step"] > 0 and np.isfinite(history[1]["first_step_loss"])
    assert history[0]["acc@112"] >= 0.5 and np.isfinite(history[1]["train_loss"])
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "history.jsonl").is_file()
    config.epochs = 2
    resumed = EmbedderTrainer(config, johns, held_out)
    assert [h["epoch"] for h in resumed.fit(progress=False)] == [0, 1, 2]
    exported = resumed.export()
    assert exported.is_file() and exported.stat().st_size > 1_000_000


def test_superres_training_steps_and_exports(johns, held_out, tmp_path):
    from facesift.training.superres import SR_SIZES, SuperResTrainer

    config = TrainConfig(
        output=str(tmp_path),
        name="facesr",
        epochs=1,
        identities_per_batch=2,
        images_per_identity=2,
        steps_per_epoch=2,
        distill=0.0,
        threads=2,
    )
    trainer = SuperResTrainer(config, johns, held_out)
    history = trainer.fit(progress=False)
    assert {f"acc@{s}" for s in SR_SIZES} <= set(history[-1])
    assert all(np.isfinite(history[-1][f"train_{k}"]) for k in ("pixel", "perceptual", "identity"))
    assert trainer.export().is_file()
