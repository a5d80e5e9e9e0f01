"""``facesift evaluate ...``: the standard protocols on a dataset, printed as tables and written as a report."""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from facesift.cli import _fail, console, errors, print_error, progress_bar
from facesift.errors import FacesiftError

app = typer.Typer(help="Measure accuracy with the standard protocols: pairs, identification, sweeps, calibration.",
                  no_args_is_help=True, add_completion=False)

DATA = typer.Option(..., "--data", help="Dataset folder laid out as <person>/<image>.")
MODELS = typer.Option(["sface"], "--model", help="Embedder; repeat to compare several side by side.")
DETECTORS = typer.Option(["yunet"], "--detector", help="Detector; repeat to compare several side by side.")
OUT = typer.Option(None, "--out", help="Write results.json, PNG plots and report.md into this folder.")
CACHE = typer.Option(None, "--cache-dir", help="Embedding cache (default: $FACESIFT_CACHE_DIR/evaluation).")
DEGRADE = typer.Option(None, "--degrade", help="Degrade one side of each pair (or the probes): e.g. resolution:28, "
                       "blur:2, jpeg:20, noise:20, occlusion:0.5, brightness:0.3.")
ATTRIBUTES = typer.Option(None, "--attributes", help="CSV image,<attribute>,...: results per attribute value.")
FORMATS = ("table", "markdown", "json")


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}, not {value!r}")
    return value


FORMAT = typer.Option("table", "--format", callback=_check_format, help="table (full width when not on a terminal), markdown or json.")
UNKNOWN = typer.Option(0.0, "--unknown-fraction", help="Fraction of people held out of the gallery as unknown probes.")


def _command(ctx: typer.Context) -> str:
    """The command as a user would type it again (only the options actually given)."""
    parts = ["facesift", "evaluate", ctx.info_name]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name).name != "COMMANDLINE":
            continue
        value, flag = ctx.params[param.name], param.opts[0]
        for item in value if isinstance(value, (list, tuple)) else [value]:
            parts += [flag] if item is True else [flag, str(item)]
    return shlex.join(parts)


@contextlib.contextmanager
def _progress() -> Iterator:
    with progress_bar(2) as bar:
        tasks: dict[str, int] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done)

        yield update


def _output(fmt: str) -> Console:
    """Where tables go: the terminal's console, or off a terminal (a log, ``> file``) one that never squeezes a table
    to 80 columns nor wraps a line: a person reads the file as the terminal would have shown it."""
    return console if console.is_terminal else Console(width=100_000, soft_wrap=True)


def _print(ctx: typer.Context, reports, out: Optional[Path], title: str, fmt: str = "table") -> None:
    from facesift.evaluation.report import markdown_table, tables, write_report

    shown = _output(fmt)
    found = tables(reports)
    if fmt == "json":  # the tables as data: one object per table, one object per row keyed by column
        print(json.dumps({"command": _command(ctx), "tables": [
            {"title": heading, "rows": [dict(zip(header, row)) for row in rows]} for heading, header, rows in found]}, indent=1))
    for heading, header, rows in found if fmt != "json" else ():
        if fmt == "markdown":
            shown.print(f"### {heading}\n\n{markdown_table(header, rows)}\n", markup=False, highlight=False)
            continue
        table = Table(*header, title=heading)
        for row in rows:
            table.add_row(*row)
        shown.print(table)
    notes = shown if fmt != "json" else errors  # json keeps stdout parseable
    for report in reports:
        inner = [p.report for p in getattr(report, "points", ())] or [report]
        for item in inner:
            if getattr(item, "failed_images", 0):
                notes.print(f"[yellow]{item.label}: no face in {item.failed_images} image(s)[/]; "
                            f"{getattr(item, 'failure_policy', 'left out of the gallery, misses as probes')}")
            for note in getattr(item, "notes", ())[1:]:
                notes.print(f"[dim]{note}[/]")
            if hasattr(item, "seconds"):
                notes.print(f"[dim]{item.label}: {item.seconds:.1f} s[/]")
    if out is not None:
        try:
            path = write_report(out, reports, command=_command(ctx), title=title)
        except ImportError as exc:
            _fail(exc)
        errors.print(f"wrote {path} with results.json and plots")


def _combinations(models: List[str], detectors: List[str]) -> list[tuple[str, str]]:
    return [(model, detector) for model in models for detector in detectors]


@app.command()
def pairs(
    ctx: typer.Context,
    data: Path = DATA,
    pairs_file: Optional[Path] = typer.Option(None, "--pairs", help="LFW-format pairs file or CSV img_a,img_b,same; "
                                              "without it every pair of the identity folders is scored."),
    model: List[str] = MODELS,
    detector: List[str] = DETECTORS,
    degrade: Optional[str] = DEGRADE,
    attributes: Optional[Path] = ATTRIBUTES,
    out: Optional[Path] = OUT,
    cache_dir: Optional[Path] = CACHE,
    output_format: str = FORMAT,
) -> None:
    """1:1 verification: k-fold accuracy (LFW protocol), ROC, AUC, TAR@FAR, EER."""
    from facesift.evaluation import evaluate_all_pairs, evaluate_pairs, load_identity_folders

    reports = []
    try:
        with _progress() as progress:
            for name, det in _combinations(model, detector):
                options = dict(model=name, detector=det, degradation=degrade, cache_dir=cache_dir, progress=progress)
                if pairs_file is not None:
                    reports.append(evaluate_pairs(data, pairs_file, attributes=attributes, **options))
                else:
                    reports.append(evaluate_all_pairs(load_identity_folders(data), **options))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    _print(ctx, reports, out, f"Verification on {data.name}", output_format)


@app.command()
def identify(
    ctx: typer.Context,
    data: Path = DATA,
    model: List[str] = MODELS,
    detector: List[str] = DETECTORS,
    unknown_fraction: float = UNKNOWN,
    degrade: Optional[str] = DEGRADE,
    attributes: Optional[Path] = ATTRIBUTES,
    out: Optional[Path] = OUT,
    cache_dir: Optional[Path] = CACHE,
    output_format: str = FORMAT,
) -> None:
    """Open-set identification, all against all: rank-1/5/10 and DIR at false-positive identification rates."""
    from facesift.evaluation import evaluate_identification, load_identity_folders

    reports = []
    try:
        dataset = load_identity_folders(data)
        with _progress() as progress:
            for name, det in _combinations(model, detector):
                reports.append(evaluate_identification(
                    dataset, model=name, detector=det, degradation=degrade, unknown_fraction=unknown_fraction,
                    attributes=attributes, cache_dir=cache_dir, progress=progress))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    _print(ctx, reports, out, f"Identification on {data.name}", output_format)


@app.command()
def sweep(
    ctx: typer.Context,
    data: Path = DATA,
    kind: str = typer.Option("resolution", "--kind", help="resolution, blur, jpeg, noise, occlusion or brightness."),
    levels: Optional[str] = typer.Option(None, "--levels", help="Comma-separated levels (default per kind, "
                                         "resolution: 112,56,28,14,7)."),
    pairs_file: Optional[Path] = typer.Option(None, "--pairs", help="Pairs file; without it, all pairs (or identify)."),
    protocol: str = typer.Option("pairs", "--protocol", help="pairs (one side degraded) or identify (probes degraded)."),
    model: List[str] = MODELS,
    detector: List[str] = DETECTORS,
    unknown_fraction: float = UNKNOWN,
    restorer: List[str] = typer.Option([], "--restorer", help="Resolution sweeps: bring each shrunk face back with "
                                       "this restorer (bicubic, realesrgan, facesr) instead of bicubic; repeat to "
                                       "compare several side by side."),
    out: Optional[Path] = OUT,
    cache_dir: Optional[Path] = CACHE,
    output_format: str = FORMAT,
) -> None:
    """A protocol repeated at each level of a degradation: accuracy against level, printed and plotted."""
    from facesift.evaluation import sweep as run_sweep

    try:
        values = [float(v) for v in levels.split(",")] if levels else None
    except ValueError:
        print_error(f"--levels must be numbers separated by commas, got {levels!r}")
        raise typer.Exit(2)
    reports = []
    try:
        with _progress() as progress:
            for name, det in _combinations(model, detector):
                for restore in restorer or [""]:
                    reports.append(run_sweep(data, kind, pairs=pairs_file, protocol=protocol, levels=values, model=name,
                                             detector=det, unknown_fraction=unknown_fraction, restorer=restore,
                                             cache_dir=cache_dir, progress=progress))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    _print(ctx, reports, out, f"{kind} sweep on {data.name}", output_format)


@app.command()
def calibrate(
    ctx: typer.Context,
    data: Path = DATA,
    fmr: List[float] = typer.Option([1e-1, 1e-2, 1e-3, 1e-4], "--fmr", help="Target false-match rates (repeat)."),
    model: str = typer.Option("sface", "--model", help="Embedder whose card gets the thresholds."),
    detector: str = typer.Option("yunet", "--detector", help="Detector used to find the faces."),
    note: str = typer.Option("", "--note", help="Text appended to the card's calibration description."),
    write: bool = typer.Option(True, "--write/--no-write", help="Write the thresholds into the model card."),
    packaged: bool = typer.Option(False, "--packaged", help="Maintainers: overwrite the card shipped in "
                                  "facesift/recognition/cards/ instead of the user's cards folder."),
    out: Optional[Path] = OUT,
    cache_dir: Optional[Path] = CACHE,
) -> None:
    """Thresholds for target false-match rates from every different-person pair, written into the model card."""
    from facesift.evaluation import calibrate as run_calibration, load_identity_folders, write_card

    try:
        with _progress() as progress:
            result = run_calibration(load_identity_folders(data), rates=tuple(fmr), model=model, detector=detector,
                                     cache_dir=cache_dir, progress=progress)
        _print(ctx, [result], out, f"Calibration on {data.name}")
        if write:
            path = write_card(result, _command(ctx), note=note, packaged=packaged)
            console.print(f"wrote the thresholds into {path}")
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
