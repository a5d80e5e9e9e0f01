"""The ``facesift`` command line: human-readable by default, ``--json`` for scripts.

Exit codes: 0 success, 2 bad usage, 3 unreadable image, 4 no face found, 5 model problem, 1 anything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table

from facesift.errors import DatasetError, FacesiftError, ImageError, ModelError, NoFaceError, UnknownBackendError
from facesift.image import IMAGE_SUFFIXES

app = typer.Typer(help="Offline face detection, embedding and verification.", no_args_is_help=True, add_completion=False)
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


def _fail(exc: Exception) -> None:
    code = next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), 1)
    print_error(str(exc))
    raise typer.Exit(code)


def expand_images(paths: List[Path]) -> List[Path]:
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


def _batch(paths: List[Path], detector: str, model: str, policy: str, label: str):
    from facesift.pipeline import get_pipeline

    pipeline = get_pipeline(detector=detector, embedder=model)
    with progress_bar(len(paths)) as bar:
        task = bar.add_task(label, total=len(paths))
        return pipeline.represent_batch(paths, policy=policy, progress=lambda n: bar.advance(task, n))


def _face_row(face_embedding) -> dict:
    face, quality = face_embedding.face, face_embedding.quality
    return {"box": [round(v, 1) for v in face.box], "score": round(face.score, 3), "quality": quality.to_dict()}


@app.command()
def detect(
    images: List[Path] = typer.Argument(..., help="Image files or folders."),
    detector: str = typer.Option("yunet", help="Detector backend."),
    policy: str = typer.Option("all", help="Which faces to report: all, or the one auto, largest or central picks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """Find faces, with boxes, landmarks and quality."""
    try:
        results = _batch(expand_images(images), detector, "sface", policy, "Detecting")
    except (FacesiftError, ValueError) as exc:
        _fail(exc)
    failed = _report_batch(results, as_json, with_embeddings=False)
    raise typer.Exit(3 if failed else 0)


@app.command()
def represent(
    images: List[Path] = typer.Argument(..., help="Image files or folders."),
    out: Optional[Path] = typer.Option(None, help="Write embeddings to a .npy (array) or .json (with faces) file."),
    model: str = typer.Option("sface", help="Embedder backend."),
    detector: str = typer.Option("yunet", help="Detector backend."),
    policy: str = typer.Option("auto", help="Which faces to embed: auto (size, centrality and detector score), "
                               "largest, central or all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines (with embeddings) instead of a table."),
) -> None:
    """Compute face embeddings."""
    if out is not None and out.suffix not in (".npy", ".json"):
        print_error("--out must end in .npy or .json")
        raise typer.Exit(2)
    try:
        results = _batch(expand_images(images), detector, model, policy, "Embedding")
    except (FacesiftError, ValueError) as exc:
        _fail(exc)
    failed = _report_batch(results, as_json, with_embeddings=True)
    if out is not None:
        _write_embeddings(results, out)
        errors.print(f"wrote {sum(len(r.faces) for r in results)} embeddings to {out}")
    raise typer.Exit(3 if failed else 0)


def _report_batch(results, as_json: bool, *, with_embeddings: bool) -> int:
    failed = 0
    table = Table("faces", "box", "detector score", "quality", "notes")
    table.columns.insert(0, Column("image", overflow="fold"))
    for result in results:
        failed += result.error is not None
        if as_json:
            record = {"image": result.source, "error": result.error, "faces": []}
            for item in result.faces:
                row = _face_row(item) | {"landmarks": [list(p) for p in item.face.landmarks]}
                if with_embeddings:
                    row["embedding"] = [round(float(v), 6) for v in item.embedding]
                record["faces"].append(row)
            console.print_json(json.dumps(record)) if console.is_terminal else print(json.dumps(record))
            continue
        if result.error:
            table.add_row(result.source, "-", "", "", "", f"[red]{result.error}[/]")
        elif not result.faces:
            table.add_row(result.source, "0", "", "", "", "no face found")
        for item in result.faces:
            box = ", ".join(f"{v:.0f}" for v in item.face.box)
            notes = "; ".join(item.quality.reasons) or "ok"
            table.add_row(result.source, str(len(result.faces)), box, f"{item.face.score:.2f}", f"{item.quality.score:.2f}", notes)
    if not as_json:
        console.print(table)
    return failed


def _write_embeddings(results, out: Path) -> None:
    if out.suffix == ".npy":
        vectors = [item.embedding for result in results for item in result.faces]
        np.save(out, np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1))
        return
    records = [
        {"image": r.source, "error": r.error, "faces": [_face_row(i) | {"embedding": i.embedding.tolist()} for i in r.faces]}
        for r in results
    ]
    out.write_text(json.dumps(records))


@app.command()
def verify(
    image_a: Path = typer.Argument(..., help="First image."),
    image_b: Path = typer.Argument(..., help="Second image."),
    model: str = typer.Option("sface", help="Embedder backend."),
    detector: str = typer.Option("yunet", help="Detector backend."),
    threshold: Optional[float] = typer.Option(None, help="Cosine threshold (overrides --fmr)."),
    fmr: Optional[float] = typer.Option(None, help="False-match rate of the calibrated operating point."),
    policy: str = typer.Option("auto", help="Which face of a photo with several: auto, largest or central."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Are two photos of the same person?"""
    from facesift import verify as verify_pair

    try:
        result = verify_pair(image_a, image_b, model=model, detector=detector, threshold=threshold, false_match_rate=fmr,
                             policy=policy)
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    colour = "green" if result.verified else "yellow"
    console.print(f"[bold {colour}]{'SAME PERSON' if result.verified else 'DIFFERENT PEOPLE'}[/]")
    console.print(result.explanation)
    for label, quality in (("first", result.quality_a), ("second", result.quality_b)):
        if quality.reasons:
            console.print(f"[dim]{label} face quality {quality.score:.2f}: {'; '.join(quality.reasons)}[/]")


@app.command()
def models() -> None:
    """List detector and embedder backends, where their weights come from, and calibrated thresholds."""
    from facesift.detection import available_detectors
    from facesift.models import locate_source, registered_weights
    from facesift.recognition import available_embedders, load_card

    table = Table("weights", "package", "licence", "installed")
    for weights in registered_weights().values():
        try:
            status = f"[green]{locate_source(weights)}[/]"
        except ModelError:
            status = f"[red]missing[/]: {weights.install_hint}"
        table.add_row(weights.name, weights.distribution, weights.licence, status)
    console.print(table)
    _trained_models_table()
    console.print(f"detectors: {', '.join(available_detectors())}")
    for name in available_embedders():
        card = load_card(name)
        points = ", ".join(f"FMR {k}: {v:.3f}" for k, v in sorted(card.thresholds.items(), key=lambda kv: float(kv[0])))
        console.print(f"embedder [bold]{name}[/]: {card.dims}-d, {card.licence}; thresholds {points or 'none'}")
        console.print(f"  calibration: {card.calibration}")


def _trained_models_table() -> None:
    """The models we trained: shipped in the package or trained here (which then overrides the shipped one)."""
    from facesift.models import locate_source
    from facesift.recognition import load_card
    from facesift.recognition.trained import SHIPPED, trained_embedders, trained_model_file, trained_origin

    table = Table("trained model", "from", "size", "takes faces", "licence", "trained on")
    for name in trained_embedders():
        card = load_card(name)
        origin = trained_origin(name)
        file = trained_model_file(name) if origin == "trained here" else locate_source(SHIPPED[name])
        if origin == "trained here" and name in SHIPPED:
            origin += " (overrides the shipped one)"
        takes = f"eyes under {card.eye_distance_below:g} px apart" if card.eye_distance_below else "any (by name)"
        table.add_row(name, origin, f"{file.stat().st_size / 1e6:.1f} MB", takes, card.licence, card.training_data or card.source)
    if table.rows:
        console.print(table)


@app.command()
def demo() -> None:
    """Run the pipeline on a public-domain sample photo that ships with scikit-image (no data needed)."""
    try:
        from skimage import data
    except ImportError:
        print_error("the demo needs scikit-image: pip install 'facesift[demo]'")
        raise typer.Exit(1)
    import cv2

    import facesift

    photo = data.astronaut()
    detected = facesift.detect(photo)
    console.print(f"astronaut.png ({photo.shape[1]}x{photo.shape[0]}): {len(detected)} face(s)")
    for item in detected:
        console.print(f"  box {[round(v) for v in item.face.box]}, score {item.face.score:.2f}, quality {item.quality.score:.2f}")
    smaller = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    same = facesift.verify(photo, smaller[:, ::-1])
    console.print(f"the photo against a smaller, mirrored copy: {same.explanation}")
    console.print("facesift works on this machine.")


# Each part of the library keeps its own commands; imported last because they use the helpers above.
from facesift.analysis.cli import analyze  # noqa: E402
from facesift.cluster.cli import app as clusters_app, cluster  # noqa: E402
from facesift.evaluation.cli import app as evaluate_app  # noqa: E402
from facesift.gallery.cli import app as gallery_app  # noqa: E402
from facesift.server.cli import keys_app, serve  # noqa: E402
from facesift.training.cli import app as train_app  # noqa: E402
from facesift.video.cli import video  # noqa: E402

app.add_typer(evaluate_app, name="evaluate")
app.add_typer(gallery_app, name="gallery")
app.add_typer(keys_app, name="keys")
app.add_typer(train_app, name="train")
app.command()(serve)
app.command()(video)
app.command()(cluster)
app.add_typer(clusters_app, name="clusters")
app.command()(analyze)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
