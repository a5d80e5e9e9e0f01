"""``facesift analyze IMG_OR_DIR...``: age, gender, emotion and liveness per face, a table or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from facesift.cli.common import exit_with_error, expand_images, print_error, progress_bar, table_console
from facesift.errors import FacesiftError, ImageError


def _summary(item) -> list[str]:
    age = f"{item.age.years:.0f} ({item.age.low:.0f}-{item.age.high:.0f})" if item.age else ""
    gender = f"{item.gender.label} {item.gender.probability:.2f}" if item.gender else ""
    emotion = f"{item.emotion.dominant} {item.emotion.probabilities[item.emotion.dominant]:.2f}" if item.emotion else ""
    live = ("live" if item.liveness.live else "[red]spoof?[/]") + f" {item.liveness.score:.2f}" if item.liveness else ""
    race = f"{item.race.dominant} {item.race.probabilities[item.race.dominant]:.2f}" if item.race else ""
    return [age, gender, emotion, live, race, "; ".join(item.reasons) or "ok"]


def analyze(
    images: list[Path] = typer.Argument(..., help="Image files or folders."),
    action: list[str] = typer.Option(["age", "gender", "emotion", "liveness"], "--action",
                                     help="age, gender, emotion, liveness, race (an audit aid); repeat for several."),
    detector: str = typer.Option("yunet", help="Detector backend; none takes each whole image as one face (face crops)."),
    policy: str = typer.Option("all", help="Which faces: all, largest or central."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per image."),
) -> None:
    """Apparent age, gender, emotion and liveness of every face (docs/analyze.md)."""
    from facesift.analysis import analyze_image
    from facesift.analysis.analyzer import check_actions

    paths = expand_images(images)
    try:
        actions = check_actions(action)
    except ValueError as exc:
        print_error(str(exc))
        raise typer.Exit(2)
    table = Table("image", "box", "age", "gender", "emotion", "liveness", "race", "notes")
    failed = faces = 0
    with progress_bar(len(paths)) as bar:
        task = bar.add_task("Analysing", total=len(paths))
        for path in paths:
            try:
                found = analyze_image(path, actions=actions, detector=detector, policy=policy)
                error = None
            except (ImageError, FileNotFoundError) as exc:
                found, error = [], f"{type(exc).__name__}: {exc}"
                failed += 1
            except (FacesiftError, ValueError) as exc:
                exit_with_error(exc)
            faces += len(found)
            bar.advance(task)
            if as_json:
                print(json.dumps({"image": str(path), "error": error, "faces": [item.to_dict() for item in found]}))
            elif error or not found:
                table.add_row(str(path), "-", "", "", "", "", "", f"[red]{error}[/]" if error else "no face found")
            for item in [] if as_json else found:
                table.add_row(str(path), ", ".join(f"{v:.0f}" for v in item.face.box), *_summary(item))
    if not as_json:
        table_console().print(table)
    raise typer.Exit(3 if failed else 0 if faces else 4)
