"""``facesift gallery ...``: enrol folders of people, search, check a profile photo, remove, find duplicates.

GALLERY is a URI (``sqlite:///g.db``, ``milvus-lite:///m.db``, ``milvus://host:19530/name``) or a plain
path (an SQLite file). Exit codes as the main CLI, plus 6 for a gallery problem (unknown person or
sample, unreadable gallery or export file).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable, NoReturn, TypeVar

import typer
from rich.table import Table

from facesift.cli.common import console, exit_with_error, expand_images, print_error, progress_bar
from facesift.errors import FacesiftError, GalleryError
from facesift.gallery.relatives import FAMILY_KEY

T = TypeVar("T")
app = typer.Typer(help="Enrol people and search, check or clean a gallery of faces.", no_args_is_help=True)

GalleryArg = typer.Argument(..., help="Gallery URI or path of an SQLite gallery file.")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of tables.")
ThresholdOpt = typer.Option(None, help="Cosine threshold (instead of --fpir).")
FmrOpt = typer.Option(None, help="Per-comparison false-match rate (instead of --fpir).")
FpirOpt = typer.Option(None, "--fpir", help="False-positive identification rate for the gallery as it is now (default 1e-2): "
                       "the share of strangers' searches allowed to match anyone.")


def _open(uri: str, **options):
    from facesift.gallery import open_gallery

    try:
        return open_gallery(uri, **options)
    except (FacesiftError, ValueError) as exc:
        _gallery_fail(exc)


def _gallery_fail(exc: Exception) -> NoReturn:
    if isinstance(exc, GalleryError):
        print_error(str(exc))
        raise typer.Exit(6)
    exit_with_error(exc)


def _call(uri: str, action: Callable[[Any], T]) -> T:
    """Open the gallery, run ``action`` on it, close it; errors become messages and exit codes."""
    with _open(uri) as store:
        try:
            return action(store)
        except (FacesiftError, OSError, ValueError) as exc:
            _gallery_fail(exc)


def _emit(data, as_json: bool) -> bool:
    if as_json:
        print(json.dumps(data))
    return as_json


@app.command()
def enroll(
    gallery: str = GalleryArg,
    folder: Path = typer.Argument(..., help="A folder with one sub-folder of photos per person (sub-folder name = person id)."),
    strict: bool = typer.Option(False, help="Refuse a photo closer to another person than to its own."),
    keep_images: bool = typer.Option(False, help="Also store the photos (default: embeddings only)."),
    family: str | None = typer.Option(None, "--family", help="Family or household id given to the new people of "
                                         "FOLDER: check and strict enrolment then compare them with each other first."),
    as_json: bool = JsonOpt,
) -> None:
    """Enrol every person folder of FOLDER; each photo is judged on its own."""
    people = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not people:
        print_error(f"{folder} has no person sub-folders (expected FOLDER/<person id>/<photos>)")
        raise typer.Exit(2)
    photos = {p.name: expand_images([p]) for p in people}
    total = sum(len(v) for v in photos.values())
    table = Table("person", "photos", "added", "refused")
    outcomes: Counter = Counter()
    with _open(gallery) as store, progress_bar(total) as bar:
        task = bar.add_task("Enrolling", total=total)
        for person, paths in photos.items():
            try:
                report = store.enroll(person, paths, strict=strict, keep_images=keep_images, on_result=lambda _: bar.advance(task),
                                      metadata={FAMILY_KEY: family} if family else None)
            except (FacesiftError, ValueError) as exc:
                _gallery_fail(exc)
            outcomes.update(r.outcome.value for r in report.results)
            if as_json:
                print(json.dumps(report.to_dict()))
                continue
            refused = Counter(r.outcome.value for r in report.results if r.outcome.value != "added")
            table.add_row(person, str(len(paths)), str(report.added), ", ".join(f"{k} {v}" for k, v in sorted(refused.items())) or "-")
    if not as_json:
        console.print(table)
        console.print(", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))


@app.command()
def search(
    gallery: str = GalleryArg,
    image: Path = typer.Argument(..., help="Photo of the face to look for."),
    k: int = typer.Option(5, "-k", help="How many people to list."),
    fpir: float | None = FpirOpt,
    threshold: float | None = ThresholdOpt,
    fmr: float | None = FmrOpt,
    all_faces: bool = typer.Option(False, "--all-faces", help="Identify every face of the photo (a group photo), each with its box."),
    as_json: bool = JsonOpt,
) -> None:
    """Who is this? Enrolled people ranked by similarity, and whether the best one is a match."""
    verb = "search_faces" if all_faces else "search"
    result = _call(gallery, lambda store: getattr(store, verb)(image, k=k, fpir=fpir, threshold=threshold, false_match_rate=fmr))
    if _emit(result.to_dict(), as_json):
        return
    for number, found in enumerate(result.faces if all_faces else [result], 1):
        colour = {"match": "green", "unknown": "yellow"}.get(found.decision, "red")
        where = f"face {number} at ({', '.join(f'{v:.0f}' for v in found.face.box)}) " if all_faces and found.face is not None else ""
        console.print(f"{where}[bold {colour}]{found.decision.upper()}[/] {found.person_id or ''}")
        table = Table("rank", "person", "similarity", "sample")
        for c in found.candidates:
            table.add_row(str(c.rank), c.person_id, f"{c.similarity:.3f}", c.sample_id)
        console.print(table)
    if all_faces and not result.faces:
        console.print("[bold red]NO_FACE[/]")
    console.print(f"operating point: {result.operating_point.describe()}")


@app.command()
def check(
    gallery: str = GalleryArg,
    person: str = typer.Argument(..., help="The person the photo is claimed to be."),
    image: Path = typer.Argument(..., help="The new (profile) photo."),
    fpir: float | None = FpirOpt,
    threshold: float | None = ThresholdOpt,
    fmr: float | None = FmrOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Is this photo PERSON, someone else enrolled, or nobody we know?"""
    result = _call(gallery, lambda store: store.check(person, image, fpir=fpir, threshold=threshold, false_match_rate=fmr))
    if _emit(result.to_dict(), as_json):
        return
    colour = "green" if result.outcome.value == "owner" else "yellow"
    console.print(f"[bold {colour}]{result.outcome.value.upper()}[/]")
    for reason in result.reasons:
        console.print(f"  {reason}")
    console.print(f"operating point: {result.operating_point.describe()}")


@app.command()
def remove(
    gallery: str = GalleryArg,
    person: str | None = typer.Argument(None, help="Person to remove with all their samples."),
    sample: str | None = typer.Option(None, help="Remove only this sample id instead."),
) -> None:
    """Delete a person (or one sample): the vectors go from the store and its index."""
    if (person is None) == (sample is None):
        print_error("give a PERSON or --sample ID (one of them)")
        raise typer.Exit(2)
    if sample is not None:
        _call(gallery, lambda store: store.remove_sample(sample))
        console.print(f"removed sample {sample}")
    else:
        console.print(f"removed {person!r} and {_call(gallery, lambda store: store.remove(person))} samples")


@app.command()
def persons(gallery: str = GalleryArg, offset: int = 0, limit: int = 100, as_json: bool = JsonOpt) -> None:
    """List enrolled people and their sample counts."""
    people = _call(gallery, lambda store: store.list_persons(offset, limit))
    if _emit([p.to_dict() for p in people], as_json):
        return
    table = Table("person", "samples", "metadata")
    for p in people:
        table.add_row(p.person_id, str(p.sample_count), json.dumps(p.metadata) if p.metadata else "")
    console.print(table)


@app.command()
def duplicates(
    gallery: str = GalleryArg,
    fpir: float | None = typer.Option(None, "--fpir", help="Share of people without a double who may be reported with one (default 1e-2)."),
    threshold: float | None = ThresholdOpt,
    fmr: float | None = FmrOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Pairs of people who are probably the same human (one face under two ids)."""
    pairs = _call(gallery, lambda store: store.duplicates(fpir=fpir, threshold=threshold, false_match_rate=fmr))
    if _emit([p.to_dict() for p in pairs], as_json):
        return
    table = Table("person a", "person b", "similarity")
    for pair in pairs:
        table.add_row(pair.person_a, pair.person_b, f"{pair.similarity:.3f}")
    console.print(table if pairs else "no probable duplicates")
    if pairs:
        console.print(f"operating point: {pairs[0].operating_point.describe()}")


@app.command()
def stats(gallery: str = GalleryArg, as_json: bool = JsonOpt) -> None:
    """Backend, model, counts and index state."""
    result = _call(gallery, lambda store: store.stats())
    if _emit(result.to_dict(), as_json):
        return
    for key, value in result.to_dict().items():
        console.print(f"{key}: {value}")


@app.command("export")
def export_gallery(gallery: str = GalleryArg,
                   file: Path = typer.Argument(..., help="Output file (.jsonl, or .jsonl.gz to compress).")) -> None:
    """Write the gallery to a portable, versioned JSON-lines file."""
    console.print(f"wrote {_call(gallery, lambda store: store.export(file))} samples to {file}")


@app.command("import")
def import_gallery(gallery: str = GalleryArg,
                   file: Path = typer.Argument(..., help="A file written by 'facesift gallery export'.")) -> None:
    """Add the people and samples of an exported file (samples already present are skipped)."""
    report = _call(gallery, lambda store: store.import_file(file))
    console.print(f"added {report.persons_added} people and {report.samples_added} samples; "
                  f"skipped {report.samples_skipped} already present")
