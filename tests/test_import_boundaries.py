"""The layers import downwards only: the library never imports the CLI, the web layer, Typer or Rich, and the web
layer never imports the CLI. Checked in a fresh interpreter, over every module found on disk (no hand list)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Imports every module of the library (all of facesift but cli/, server/ and __main__), notes what got loaded, then
# every module of the web layer. pkgutil.walk_packages would import cli/ and server/ themselves to look inside them,
# so the walk is done by hand, one package at a time.
PROBE = """
import importlib, json, pkgutil, sys

def walk(package, skip=()):
    names = [package]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__, package + "."):
        if info.name not in skip:
            names += walk(info.name) if info.ispkg else [importlib.import_module(info.name).__name__]
    return names

def loaded(*prefixes):
    return sorted(m for m in sys.modules if m.split(".")[0] in prefixes or m.startswith(tuple(p + "." for p in prefixes)))

library = walk("facesift", skip=("facesift.cli", "facesift.server", "facesift.__main__"))
after_library = loaded("facesift.cli", "facesift.server", "typer", "rich")
server = walk("facesift.server")
print(json.dumps({"library": library, "after_library": after_library, "server": server, "after_server": loaded("facesift.cli")}))
"""


@pytest.fixture(scope="module")
def imported() -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_library_never_imports_the_cli_the_web_layer_typer_or_rich(imported):
    parts = {name.split(".")[1] for name in imported["library"] if "." in name}
    # the walk found the library's parts on disk (a walk that imported nothing would pass the check below)
    assert {"pipeline", "gallery", "evaluation", "training", "video", "cluster", "analysis", "recognition"} <= parts
    assert imported["after_library"] == []


def test_the_web_layer_never_imports_the_cli(imported):
    assert {"facesift.server.app", "facesift.server.keys", "facesift.server.galleries"} <= set(imported["server"])
    assert imported["after_server"] == []


def test_onnxruntime_is_loaded_before_usearch_whatever_module_is_imported_first():
    """With usearch 2.26 loaded first, importing onnxruntime crashes the process (SIGSEGV, checked with onnxruntime
    1.32). Any facesift module, the gallery's usearch store included, loads onnxruntime first, so a process that
    imports facesift before usearch runs both."""
    probe = (
        "import facesift.gallery.sqlite, sys\n"
        "import numpy as np\n"
        "from usearch.index import Index\n"
        "import onnxruntime\n"
        "assert list(sys.modules).index('onnxruntime') < list(sys.modules).index('usearch')\n"
        "Index(ndim=4).add(0, np.array([1.0, 0.0, 0.0, 0.0], np.float32))\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", (result.returncode, result.stderr[-2000:])
