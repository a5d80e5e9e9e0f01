"""The face commands at the top of ``facesift``: detect, represent, verify, models, demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.table import Column, Table

from facesift.cli.common import console, errors, exit_with_error, expand_images, print_error, progress_bar
from facesift.errors import FacesiftError, ModelError


def _batch(paths: list[Path], detector: str, model: str, policy: str, label: str):
    from facesift.pipeline import get_pipeline

    pipeline = get_pipeline(detector=detector, embedder=model)
    with progress_bar(len(paths)) as bar:
        task = bar.add_task(label, total=len(paths))
        return pipeline.represent_batch(paths, policy=policy, progress=lambda n: bar.advance(task, n))


def _face_row(face_embedding) -> dict:
    face, quality = face_embedding.face, face_embedding.quality
    return {"box": [round(v, 1) for v in face.box], "score": round(face.score, 3), "quality": quality.to_dict()}


def detect(
    images: list[Path] = typer.Argument(..., help="Image files or folders."),
    detector: str = typer.Option("yunet", help="Detector backend."),
    policy: str = typer.Option("all", help="Which faces to report: all, or the one auto, largest or central picks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """Find faces, with boxes, landmarks and quality."""
    try:
        results = _batch(expand_images(images), detector, "sface", policy, "Detecting")
    except (FacesiftError, ValueError) as exc:
        exit_with_error(exc)
    failed = _report_batch(results, as_json, with_embeddings=False)
    raise typer.Exit(3 if failed else 0)


def represent(
    images: list[Path] = typer.Argument(..., help="Image files or folders."),
    out: Path | None = typer.Option(None, help="Write embeddings to a .npy (array) or .json (with faces) file."),
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
        exit_with_error(exc)
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


def verify(
    image_a: Path = typer.Argument(..., help="First image."),
    image_b: Path = typer.Argument(..., help="Second image."),
    model: str = typer.Option("sface", help="Embedder backend."),
    detector: str = typer.Option("yunet", help="Detector backend."),
    threshold: float | None = typer.Option(None, help="Cosine threshold (overrides --fmr)."),
    fmr: float | None = typer.Option(None, help="False-match rate of the calibrated operating point."),
    policy: str = typer.Option("auto", help="Which face of a photo with several: auto, largest or central."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Are two photos of the same person?"""
    from facesift import verify as verify_pair

    try:
        result = verify_pair(image_a, image_b, model=model, detector=detector, threshold=threshold, false_match_rate=fmr,
                             policy=policy)
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    colour = "green" if result.verified else "yellow"
    console.print(f"[bold {colour}]{'SAME PERSON' if result.verified else 'DIFFERENT PEOPLE'}[/]")
    console.print(result.explanation)
    for label, quality in (("first", result.quality_a), ("second", result.quality_b)):
        if quality.reasons:
            console.print(f"[dim]{label} face quality {quality.score:.2f}: {'; '.join(quality.reasons)}[/]")


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
