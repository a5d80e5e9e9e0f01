"""PyTorch is an optional extra: the core package, its CLI and the pipeline never import it."""

from __future__ import annotations

import subprocess
import sys


def test_core_does_not_import_torch():
    code = (
        "import sys, facesift; from facesift.cli import app; import facesift.restoration, facesift.recognition.trained; "
        "facesift.Pipeline().close(); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
