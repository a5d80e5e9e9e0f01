"""The ``facesift`` command line: human-readable by default, ``--json`` for scripts.

One module per command group (faces.py: detect, represent, verify, models, demo; gallery.py, evaluation.py, ...),
their shared consoles, exit codes and progress bars in common.py. The library never imports this package: it
reports progress through callbacks, which the commands here draw as Rich progress bars.

Exit codes: 0 success, 2 bad usage, 3 unreadable image, 4 no face found, 5 model problem, 1 anything else.
"""

from __future__ import annotations

import typer

from facesift.cli import analysis, cluster, evaluation, faces, gallery, server, training, video

app = typer.Typer(help="Offline face detection, embedding and verification.", no_args_is_help=True, add_completion=False)

for command in (faces.detect, faces.represent, faces.verify, faces.models, faces.demo, server.serve, video.video,
                cluster.cluster, analysis.analyze):
    app.command()(command)
app.add_typer(evaluation.app, name="evaluate")
app.add_typer(gallery.app, name="gallery")
app.add_typer(server.keys_app, name="keys")
app.add_typer(training.app, name="train")
app.add_typer(cluster.app, name="clusters")


def main() -> None:
    """The console script ``facesift`` and ``python -m facesift``."""
    app()
