"""`facesift evaluate` output read where it usually lands: a file, a CI log (not a terminal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_evaluation import cache, lfw  # noqa: F401  (fixtures: the tiny LFW-layout set and its embedding cache)
from typer.testing import CliRunner

from facesift.cli import app

HEADERS = ("run", "pairs", "no face", "accuracy %", "at default threshold %", "AUC", "EER %")


def test_evaluate_pairs_redirected_to_a_file_is_a_readable_table(lfw, cache, tmp_path, sface_run):  # noqa: F811
    """`facesift evaluate pairs ... > out.txt`: no header cut to fit 80 columns, no wrapped rows."""
    out = tmp_path / "out.txt"
    command = [sys.executable, "-m", "facesift", "evaluate", "pairs", "--data", str(lfw), "--pairs", str(lfw / "pairs.txt"),
               "--cache-dir", str(cache)]
    root = Path(__file__).resolve().parent.parent
    env = os.environ | {"PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "COLUMNS": "80"}
    with out.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.PIPE, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "…" not in text and "\x1b[" not in text  # nothing truncated, no colour codes in a file
    lines = text.splitlines()
    header = next(line for line in lines if "accuracy %" in line)
    assert all(f" {name} " in header for name in HEADERS), header
    row = next(line for line in lines if f"{sface_run}+yunet" in line)
    assert len(row) == len(header) > 80  # one line per row, as wide as it needs


def test_evaluate_pairs_as_markdown_and_json(lfw, cache, sface_run):  # noqa: F811
    runner = CliRunner()
    args = ["evaluate", "pairs", "--data", str(lfw), "--pairs", str(lfw / "pairs.txt"), "--cache-dir", str(cache)]
    markdown = runner.invoke(app, [*args, "--format", "markdown"])
    assert markdown.exit_code == 0, markdown.output
    assert "### Verification" in markdown.output and "| run | pairs | no face | accuracy % |" in markdown.output
    assert f"| {sface_run}+yunet | 16 |" in markdown.output
    data = runner.invoke(app, [*args, "--format", "json"])
    assert data.exit_code == 0, data.output
    table = json.loads(data.stdout)["tables"][0]
    assert table["title"] == "Verification" and table["rows"][0]["run"] == f"{sface_run}+yunet" and table["rows"][0]["pairs"] == "16"
    wrong = runner.invoke(app, [*args, "--format", "html"])
    assert wrong.exit_code == 2 and "one of table, markdown, json" in wrong.output
