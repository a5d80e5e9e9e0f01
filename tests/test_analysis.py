"""facesift.analyze on real photos: every action, held-out faces of the shared sets, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import facesift
from facesift.analysis.data import EMOTIONS, file_fold, held_out_subjects, read_liveness, read_utkface
from facesift.cli import app
from facesift.errors import NotAnImageError


def usable(paths: list[Path], count: int) -> list[Path]:
    """The first ``count`` photos whose face passes the quality gate (enrolment and the check judge quality first)."""
    return [p for p in paths if (found := facesift.detect(p, policy="largest")) and found[0].quality.acceptable][:count]


def held_out_utkface(faces: Path, count: int) -> list:
    samples = [s for s in read_utkface(faces / "utkface-dev") if file_fold(s.group) == 0]
    return samples[:: max(1, len(samples) // count)][:count]


def test_age_and_gender_on_held_out_utkface(faces):
    samples = held_out_utkface(faces, 16)
    results = [facesift.analyze(s.path, ("age", "gender")) for s in samples]
    assert all(len(found) == 1 for found in results)
    gender_right = sum((found[0].gender.label == "woman") == (s.gender == 1) for s, found in zip(samples, results, strict=True))
    age_errors = [abs(found[0].age.years - s.age) for s, found in zip(samples, results, strict=True)]
    assert gender_right >= 13, gender_right
    assert np.median(age_errors) <= 8, age_errors
    for found in results:
        age = found[0].age
        assert age.low <= age.years <= age.high and 0 < age.coverage < 1
        assert found[0].emotion is None and found[0].liveness is None  # only what was asked


def test_age_gender_and_emotion_read_sface_map_from_the_same_pass_as_the_embedding(faces, tmp_path):
    """The map is SFace's own layer where the card says, and the pass that gives it gives the embedding too (equal
    to the sface embedder's); age and gender are two outputs of one shipped file, which stores its weights in fp16."""
    import onnx

    from facesift.analysis.features import MAP_LAYERS, sface_features
    from facesift.analysis.heads import MODELS_DIR, read_cards
    from facesift.models import model_path
    from facesift.pipeline import get_pipeline
    from facesift.runtime import open_session

    cards = read_cards()
    assert {cards[a].input for a in ("age", "gender", "emotion")} <= set(MAP_LAYERS)
    assert cards["age"].file == cards["gender"].file and cards["age"].output != cards["gender"].output
    stored = onnx.load(str(MODELS_DIR / cards["emotion"].file))
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in stored.graph.initializer)
    pipeline = get_pipeline()
    paths = [s.path for s in held_out_utkface(faces, 4)]
    crops = np.stack([pipeline.embedder.align(pixels, pipeline.detect(pixels)[0].face) for pixels in map(facesift.load_image, paths)])
    whole = onnx.load(str(model_path("sface")))
    for layer in MAP_LAYERS:
        whole.graph.output.append(onnx.helper.make_tensor_value_info(layer, onnx.TensorProto.FLOAT, None))
    onnx.save(whole, str(tmp_path / "sface-with-maps.onnx"))
    session, name = open_session(tmp_path / "sface-with-maps.onnx")
    maps = session.run(list(MAP_LAYERS), {name: crops.transpose(0, 3, 1, 2).astype(np.float32)})
    embeddings, found = sface_features(crops, MAP_LAYERS)
    for layer, expected in zip(MAP_LAYERS, maps, strict=True):
        np.testing.assert_allclose(found[layer], expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="conv_14_relu"):
        sface_features(crops, ["conv_14_relu"])
    np.testing.assert_allclose(embeddings, pipeline.embedder.embed(crops), atol=1e-5)


def test_emotion_on_48px_crops_with_detector_none(faces):
    happy = sorted((faces / "fer2013-dev" / "happy").iterdir())
    held = [p for p in happy if file_fold(p.name) == 0][:12]
    results = [facesift.analyze(p, ("emotion",), detector="none") for p in held]
    assert all(len(found) == 1 and found[0].face.box == (0.0, 0.0, 48.0, 48.0) for found in results)
    for found in results:
        probabilities = found[0].emotion.probabilities
        assert list(probabilities) == list(EMOTIONS) and abs(sum(probabilities.values()) - 1) < 1e-3
    assert sum(found[0].emotion.dominant == "happy" for found in results) >= 5  # chance: 12 / 7; held-out happy recall ~0.6


def test_liveness_tells_held_out_prints_from_live_faces(faces):
    samples = read_liveness(faces / "nuaa-dev")
    held = held_out_subjects(samples)
    live = [s.path for s in samples if s.group in held and s.live == 1][::15]
    spoof = [s.path for s in samples if s.group in held and s.live == 0][::15]
    live_checks = [facesift.analyze(p, ("liveness",))[0].liveness for p in live]
    spoof_checks = [facesift.analyze(p, ("liveness",))[0].liveness for p in spoof]
    assert np.mean([c.score for c in live_checks]) > np.mean([c.score for c in spoof_checks])
    right = sum(c.live for c in live_checks) + sum(not c.live for c in spoof_checks)
    assert right >= 0.8 * (len(live) + len(spoof)), (right, len(live) + len(spoof))
    assert "BPCER" in live_checks[0].operating_point and live_checks[0].decision


def test_several_faces_each_get_an_analysis(faces):
    found = facesift.analyze(faces / "wild" / "_multi_face" / "obama_and_biden.jpg")
    assert len(found) >= 2  # the two men, and a third face turned sideways (its quality says so)
    assert all(f.age and f.gender and f.emotion and f.liveness and f.race is None for f in found)
    record = found[0].to_dict()
    assert json.dumps(record) and set(record) >= {"face", "quality", "age", "gender", "emotion", "liveness", "reasons"}


def test_no_face_tiny_face_and_bad_input(faces):
    from skimage import data

    assert facesift.analyze(data.coffee()) == []  # a real photo without a face
    tiny = cv2.resize(
        cv2.imread(str(faces / "fer2013-dev" / "happy" / sorted((faces / "fer2013-dev" / "happy").iterdir())[0].name)), (16, 16)
    )
    found = facesift.analyze(tiny, detector="none")
    assert len(found) == 1 and found[0].age is None and found[0].liveness is None
    assert "too small" in found[0].reasons[0]
    with pytest.raises(NotAnImageError):
        facesift.analyze(b"this is not an image")
    with pytest.raises(ValueError, match="choose from"):
        facesift.analyze(faces / "wild" / "barack_obama" / "obama.jpg", ("age", "beauty"))


def test_race_only_on_request(faces):
    found = facesift.analyze(faces / "wild" / "barack_obama" / "obama.jpg", ("race",))
    assert found[0].race.dominant in found[0].race.probabilities and found[0].age is None


def test_detector_none_embeds_a_face_that_fills_the_image(faces):
    crop = next(p for p in sorted((faces / "fer2013-dev" / "neutral").iterdir()))
    assert len(facesift.represent(crop, detector="none")) == 1
    assert len(facesift.detect(crop, detector="none")) == 1


def test_gallery_require_live_refuses_a_print(faces, tmp_path):
    from facesift.gallery import CheckOutcome, EnrollOutcome, open_gallery

    samples = read_liveness(faces / "nuaa-dev")
    held = sorted(held_out_subjects(samples))[0]
    live = usable([s.path for s in samples if s.group == held and s.live == 1][::5], 1)
    spoof = usable([s.path for s in samples if s.group == held and s.live == 0][::5], 2)
    with open_gallery(tmp_path / "g.db") as gallery:
        report = gallery.enroll(held, [live[0], spoof[0]], require_live=True)
        outcomes = [r.outcome for r in report.results]
        assert outcomes[1] is EnrollOutcome.SPOOF and "presentation attack" in report.results[1].reason
        assert outcomes[0] is EnrollOutcome.ADDED
        assert gallery.check(held, spoof[1], require_live=True).outcome is CheckOutcome.SPOOF
        assert gallery.check(held, spoof[1]).outcome is not CheckOutcome.SPOOF  # only when asked


def test_cli_analyze(faces, tmp_path):
    runner = CliRunner()
    photo = faces / "wild" / "_multi_face" / "obama_and_biden.jpg"
    result = runner.invoke(app, ["analyze", str(photo), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(record["faces"]) >= 2 and record["faces"][0]["age"]["years"] > 0
    crop = sorted((faces / "fer2013-dev" / "surprise").iterdir())[0]
    result = runner.invoke(app, ["analyze", str(crop), "--detector", "none", "--action", "emotion"])
    assert result.exit_code == 0 and "ok" in result.stdout
    from skimage import data

    cv2.imwrite(str(tmp_path / "coffee.png"), data.coffee())
    result = runner.invoke(app, ["analyze", str(tmp_path / "coffee.png"), "--json"])
    assert result.exit_code == 4 and json.loads(result.stdout)["faces"] == []
    assert runner.invoke(app, ["analyze", str(photo), "--action", "beauty"]).exit_code == 2


def test_evaluate_analyze_runs_unchanged_on_another_set_laid_out_the_same(faces, tmp_path):
    """A small set in the shared sets' layout (links to real photos), measured whole with --split all."""
    (tmp_path / "utk").mkdir()
    for sample in held_out_utkface(faces, 12):
        (tmp_path / "utk" / sample.path.name).symlink_to(sample.path)
    for emotion in ("happy", "surprise"):
        (tmp_path / "fer" / emotion).mkdir(parents=True)
        for path in [p for p in sorted((faces / "fer2013-dev" / emotion).iterdir()) if file_fold(p.name) == 0][:4]:
            (tmp_path / "fer" / emotion / path.name).symlink_to(path)
    samples = read_liveness(faces / "nuaa-dev")
    for sample in [s for s in samples if s.group in held_out_subjects(samples)][::27]:
        folder = tmp_path / "nuaa" / ("live" if sample.live else "spoof")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / sample.path.name).symlink_to(sample.path)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", "analyze", "--age-gender", str(tmp_path / "utk"), "--emotion", str(tmp_path / "fer"),
                                      "--liveness", str(tmp_path / "nuaa"), "--split", "all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "results.json").read_text())
    actions = {r["action"]: r for r in record["results"]}
    assert set(actions) == {"age", "gender", "emotion", "liveness"}
    assert actions["age"]["faces"] == 12 and 0 < actions["age"]["value"] < 30
    assert len(actions["emotion"]["confusion"]) == 7 and sum(map(sum, actions["emotion"]["confusion"])) == 8
    assert {"apcer", "bpcer", "acer"} <= set(actions["liveness"]["breakdown"][0])
    assert (out / "liveness.png").is_file() and (out / "emotion.png").is_file() and "apcer" in (out / "report.md").read_text()
    bad = CliRunner().invoke(app, ["evaluate", "analyze", "--emotion", str(tmp_path / "utk"), "--split", "all"])
    assert bad.exit_code == 2 and "expected folders named" in bad.output


def test_train_analysis_refuses_an_unknown_head():
    result = CliRunner().invoke(app, ["train", "analysis", "beauty"])
    assert result.exit_code == 2 and "unknown head" in result.output


def test_the_fine_tuned_networks_train_on_real_faces_export_in_fp16_and_load(faces, tmp_path):
    """The training machinery end to end on a few real UTKFace faces (one epoch: the machinery, not accuracy): the
    maps are SFace's and are kept for reuse, the exported file stores fp16 and loads back to the network's numbers,
    and the cards say which output each head reads."""
    torch = pytest.importorskip("torch")
    from facesift.analysis.data import prepare_faces
    from facesift.analysis.features import sface_features
    from facesift.analysis.heads import load_heads, run_heads, write_cards
    from facesift.training.analysis import AgeGenderOutputs, TailConfig, TailNetwork, _export_tail, augmented_maps, train_age_gender

    samples = held_out_utkface(faces, 16)
    prepared = prepare_faces(samples)
    config = TailConfig(epochs=1, batch=8, views=3)
    maps = augmented_maps(prepared.crops, config.layer, 3, 0, tmp_path / "cache", log=lambda _: None)
    assert maps.shape == (16, 3, 512, 14, 14) and maps.dtype == np.float16
    exact = sface_features(prepared.crops, [config.layer])[1][config.layer]
    np.testing.assert_allclose(maps[:, 0].astype(np.float32), exact, rtol=1e-2, atol=1e-2)
    assert augmented_maps(prepared.crops, config.layer, 3, 0, tmp_path / "cache", log=pytest.fail).filename == maps.filename  # reused
    assert not np.allclose(maps[:, 1], maps[:, 0]) and not np.allclose(maps[:, 2], maps[:, 0])  # mirrored, augmented

    ages = np.array([s.age for s in samples], np.float32)
    women = np.array([s.gender for s in samples])
    age_card, gender_card = train_age_gender(maps, ages, women, np.arange(16) % 2, tmp_path, config, log=lambda _: None)
    assert (age_card.file, age_card.output, gender_card.output) == ("age-gender.onnx", "age", "gender")
    bands = age_card.calibration["bands"]
    assert [b[0] for b in bands] == sorted(b[0] for b in bands) and all(b[1] > 0 and b[2] > 0 for b in bands)
    write_cards({"age": age_card, "gender": gender_card}, tmp_path)
    heads = load_heads(tmp_path)
    found = run_heads(list(heads.values()), {config.layer: maps[:, 0].astype(np.float32)})
    assert found["age"].shape == (16, 1) and found["gender"].shape == (16, 1) and (0 <= found["age"]).all() and (found["age"] <= 100).all()

    network = TailNetwork(config.layer, 102, 0.0).eval()
    _export_tail(AgeGenderOutputs(network), ["age", "gender"], tmp_path / "check.onnx")
    write_cards({"age": age_card.__class__(**{**age_card.__dict__, "file": "check.onnx"})}, tmp_path / "check")
    (tmp_path / "check" / "check.onnx").write_bytes((tmp_path / "check.onnx").read_bytes())
    with torch.no_grad():
        expected = AgeGenderOutputs(network)(torch.from_numpy(maps[:, 0].astype(np.float32)))[0].numpy()
    loaded = load_heads(tmp_path / "check")["age"].run(maps[:, 0].astype(np.float32))
    np.testing.assert_allclose(loaded, expected, atol=0.5)  # fp16 weights: within half a year
