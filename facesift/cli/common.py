"""What every command group shares: the consoles, error lines and exit codes, progress bars, image lists.

Exit codes: 0 success, 2 bad usage, 3 unreadable image, 4 no face found, 5 model problem, 1 anything else
(and 6 for a gallery problem, in ``facesift gallery``).
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from facesift.errors import DatasetError, ImageError, ModelError, NoFaceError, UnknownBackendError
from facesift.image import IMAGE_SUFFIXES

console = Console()
# errors never wrap: scripts and tests read them whole, and a path broken over two lines cannot be pasted
errors = Console(stderr=True, soft_wrap=True)


def table_console() -> Console:
    """Where tables go: the terminal's console, or off a terminal (a log, ``> file``) one that never squeezes a table
    to 80 columns nor wraps a line: a person reads the file as the terminal would have shown it."""
    return console if console.is_terminal else Console(width=100_000, soft_wrap=True)


EXIT_CODES = ((DatasetError, 2), (ImageError, 3), (FileNotFoundError, 3), (NoFaceError, 4), (ModelError, 5), (UnknownBackendError, 2))


def print_error(message: str) -> None:
    """One error line on stderr, the message shown literally (no Rich markup inside it)."""
    errors.print(f"[bold red]error:[/] {escape(message)}")


def exit_with_error(exc: Exception) -> NoReturn:
    """End the command on ``exc``: its message on stderr, and the exit code of its kind (``EXIT_CODES``; 1 otherwise)."""
    code = next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), 1)
    print_error(str(exc))
    raise typer.Exit(code)


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given, folders expanded (recursively, sorted) to the image files inside them."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def progress_bar(total: int) -> Progress:
    """A Rich progress bar on stderr, shown for long work when a person is watching."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
        disable=total < 2 or not errors.is_terminal,
    )
