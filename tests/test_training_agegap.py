"""The age-gap fine-tuning (facesift/training/agegap.py) on real LAG and Pins photos: the machinery, not accuracy
(that is measured by `facesift evaluate age-gap` on held-out people, docs/hard-cases.md)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from facesift.cli import app
from facesift.evaluation.agegap import age_gap_people
from facesift.runtime import open_session


def test_fine_tuning_pulls_young_photos_to_their_adult_selves_and_keeps_other_faces(faces, tmp_path):
    torch = pytest.importorskip("torch")
    from facesift.training.agegap import START_LAYER, AgeGapConfig, age_gap_faces, face_crops, fine_tune
    from facesift.training.analysis import augmented_maps
    from facesift.training.sface import export_onnx, sface_from_onnx

    people = age_gap_people(faces / "lag-dev")[:6]
    crops, person, young = age_gap_faces(faces / "lag-dev", people, tmp_path, log=lambda _: None)
    assert young.any() and (~young).any() and set(person) <= set(range(6)) and len(crops) == len(person)
    again = age_gap_faces(faces / "lag-dev", people, tmp_path, log=pytest.fail)  # cached: no detection the second time
    assert np.array_equal(again[0], crops)
    generic = face_crops(sorted((faces / "pins90").rglob("*.jpg"))[:24], tmp_path, log=lambda _: None)[0]
    config = AgeGapConfig(epochs=2, steps_per_epoch=10, batch=16, lr=1e-3, views=2)
    maps = augmented_maps(crops, START_LAYER, 2, 0, tmp_path, log=lambda _: None)
    generic_maps = augmented_maps(generic, START_LAYER, 2, 0, tmp_path, log=lambda _: None)
    tuned = fine_tune(maps, person, young, generic_maps, config, log=lambda _: None)

    sface = sface_from_onnx()
    changed = {name for name, module in tuned.named_children()
               if any(not torch.equal(a, b) for a, b in zip(module.state_dict().values(), sface._modules[name].state_dict().values()))}
    assert changed and all(name.startswith(("conv_13", "conv_14")) for name in changed)  # only SFace's last two blocks

    def embed(network, images):
        with torch.no_grad():
            out = network(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)))
        return torch.nn.functional.normalize(out).numpy()

    before, after = embed(sface, crops), embed(tuned, crops)
    adult_target = {p: before[(person == p) & ~young].mean(0) for p in set(person[~young])}
    rows = [r for r in np.flatnonzero(young) if person[r] in adult_target]
    closer = [after[r] @ adult_target[person[r]] - before[r] @ adult_target[person[r]] for r in rows]
    assert np.mean(closer) > 0  # young photos moved towards their adult selves
    kept = (embed(tuned, generic) * embed(sface, generic)).sum(1)
    assert kept.min() > 0.9  # other faces keep SFace's embedding

    path = export_onnx(tuned, tmp_path / "sface-agegap.onnx")
    session, input_name = open_session(path)
    loaded = session.run(None, {input_name: crops[:4].transpose(0, 3, 1, 2).astype(np.float32)})[0]
    np.testing.assert_allclose(loaded / np.linalg.norm(loaded, axis=1, keepdims=True), after[:4], atol=1e-4)


def test_train_age_gap_refuses_an_unknown_people_choice():
    result = CliRunner().invoke(app, ["train", "age-gap", "--people", "some"])
    assert result.exit_code == 2 and "--people is fit or all" in result.output
