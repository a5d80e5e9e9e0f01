"""``facesift evaluate ...``: the standard protocols on a dataset, printed as tables and written as a report."""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path
from typing import Iterator

import typer
from rich.table import Table

from facesift.cli.common import console, errors, exit_with_error, print_error, progress_bar, table_console
from facesift.errors import FacesiftError
from facesift.pipeline import DEFAULT_FACE_POLICY

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
POLICIES = typer.Option(["auto"], "--policy", help="Which face of a photo with several: auto (size, centrality and "
                        "detector score), largest or central; repeat to compare several side by side.")
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


def _print(ctx: typer.Context, reports, out: Path | None, title: str, fmt: str = "table") -> None:
    from facesift.evaluation.report import markdown_table, tables, write_report

    shown = table_console()
    found = tables(reports)
    if fmt == "json":  # the tables as data: one object per table, one object per row keyed by column
        print(
            json.dumps(
                {
                    "command": _command(ctx),
                    "tables": [
                        {"title": heading, "rows": [dict(zip(header, row, strict=True)) for row in rows]} for heading, header, rows in found
                    ],
                },
                indent=1,
            )
        )
    for heading, header, rows in found if fmt != "json" else ():
        if fmt == "markdown":
            shown.print(f"### {heading}\n\n{markdown_table(header, rows)}\n", markup=False, highlight=False)
            continue
        table = Table(*header, title=heading)
        for row in rows:
            table.add_row(*row)
        shown.print(table)
    slices = [(r.label, s) for r in reports for s in getattr(r, "slices", ())]
    if slices and fmt != "json":
        header = ["run", "attribute", "value", "pairs", "accuracy %", "at default threshold %", "same person accepted at default %"]
        rows = [[label, s.attribute, s.value, f"{s.pairs:,}", f"{100 * s.accuracy:.2f}",
                 *("n/a" if v is None else f"{100 * v:.2f}" for v in (s.accuracy_at_default, s.tar_at_default))] for label, s in slices]
        if fmt == "markdown":
            shown.print(f"### Slices\n\n{markdown_table(header, rows)}\n", markup=False, highlight=False)
        else:
            table = Table(*header, title="Slices")
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
            exit_with_error(exc)
        errors.print(f"wrote {path} with results.json and plots")


def _combinations(models: list[str], detectors: list[str], policies: list[str]) -> list[tuple[str, str, str]]:
    return [(model, detector, policy) for model in models for detector in detectors for policy in policies]


@app.command()
def pairs(
    ctx: typer.Context,
    data: Path = DATA,
    pairs_file: Path | None = typer.Option(None, "--pairs", help="LFW-format pairs file or CSV img_a,img_b,same; "
                                              "without it every pair of the identity folders is scored."),
    model: list[str] = MODELS,
    detector: list[str] = DETECTORS,
    policy: list[str] = POLICIES,
    degrade: str | None = DEGRADE,
    attributes: Path | None = ATTRIBUTES,
    out: Path | None = OUT,
    cache_dir: Path | None = CACHE,
    output_format: str = FORMAT,
) -> None:
    """1:1 verification: k-fold accuracy (LFW protocol), ROC, AUC, TAR@FAR, EER."""
    from facesift.evaluation import evaluate_all_pairs, evaluate_pairs, load_identity_folders

    reports = []
    try:
        with _progress() as progress:
            for name, det, face in _combinations(model, detector, policy):
                options = dict(model=name, detector=det, degradation=degrade, cache_dir=cache_dir, progress=progress,
                               policy=face)
                if pairs_file is not None:
                    reports.append(evaluate_pairs(data, pairs_file, attributes=attributes, **options))
                else:
                    reports.append(evaluate_all_pairs(load_identity_folders(data), **options))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    _print(ctx, reports, out, f"Verification on {data.name}", output_format)


@app.command()
def identify(
    ctx: typer.Context,
    data: Path = DATA,
    model: list[str] = MODELS,
    detector: list[str] = DETECTORS,
    policy: list[str] = POLICIES,
    unknown_fraction: float = UNKNOWN,
    degrade: str | None = DEGRADE,
    attributes: Path | None = ATTRIBUTES,
    out: Path | None = OUT,
    cache_dir: Path | None = CACHE,
    output_format: str = FORMAT,
) -> None:
    """Open-set identification, all against all: rank-1/5/10 and DIR at false-positive identification rates."""
    from facesift.evaluation import evaluate_identification, load_identity_folders

    reports = []
    try:
        dataset = load_identity_folders(data)
        with _progress() as progress:
            for name, det, face in _combinations(model, detector, policy):
                reports.append(evaluate_identification(
                    dataset, model=name, detector=det, degradation=degrade, unknown_fraction=unknown_fraction,
                    attributes=attributes, cache_dir=cache_dir, progress=progress, policy=face))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    _print(ctx, reports, out, f"Identification on {data.name}", output_format)


@app.command()
def sweep(
    ctx: typer.Context,
    data: Path = DATA,
    kind: str = typer.Option("resolution", "--kind", help="resolution, blur, jpeg, noise, occlusion or brightness."),
    levels: str | None = typer.Option(None, "--levels", help="Comma-separated levels (default per kind, "
                                         "resolution: 112,56,28,14,7)."),
    pairs_file: Path | None = typer.Option(None, "--pairs", help="Pairs file; without it, all pairs (or identify)."),
    protocol: str = typer.Option("pairs", "--protocol", help="pairs (one side degraded) or identify (probes degraded)."),
    model: list[str] = MODELS,
    detector: list[str] = DETECTORS,
    policy: str = typer.Option("auto", "--policy", help="Which face of a photo with several: auto, largest or central."),
    unknown_fraction: float = UNKNOWN,
    restorer: list[str] = typer.Option([], "--restorer", help="Resolution sweeps: bring each shrunk face back with "
                                       "this restorer (bicubic, realesrgan, facesr) instead of bicubic; repeat to "
                                       "compare several side by side."),
    out: Path | None = OUT,
    cache_dir: Path | None = CACHE,
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
            for name, det, face in _combinations(model, detector, [policy]):
                for restore in restorer or [""]:
                    reports.append(run_sweep(data, kind, pairs=pairs_file, protocol=protocol, levels=values, model=name,
                                             detector=det, unknown_fraction=unknown_fraction, restorer=restore,
                                             cache_dir=cache_dir, progress=progress, policy=face))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    _print(ctx, reports, out, f"{kind} sweep on {data.name}", output_format)


@app.command()
def calibrate(
    ctx: typer.Context,
    data: Path = DATA,
    fmr: list[float] = typer.Option([1e-1, 1e-2, 1e-3, 1e-4], "--fmr", help="Target false-match rates (repeat)."),
    model: str = typer.Option("sface", "--model", help="Embedder whose card gets the thresholds."),
    detector: str = typer.Option("yunet", "--detector", help="Detector used to find the faces."),
    policy: str = typer.Option("auto", "--policy", help="Which face of a photo with several: auto, largest or central."),
    note: str = typer.Option("", "--note", help="Text appended to the card's calibration description."),
    check_data: list[Path] = typer.Option([], "--check-data", help="Held-out datasets (people not in --data; repeat): "
                                          "the tail model's thresholds are checked against all their different-person pairs."),
    write: bool = typer.Option(True, "--write/--no-write", help="Write the thresholds into the model card."),
    packaged: bool = typer.Option(False, "--packaged", help="Maintainers: overwrite the card shipped in "
                                  "facesift/recognition/cards/ instead of the user's cards folder."),
    out: Path | None = OUT,
    cache_dir: Path | None = CACHE,
) -> None:
    """Thresholds for target false-match rates from every different-person pair, written into the model card."""
    from facesift.evaluation import calibrate as run_calibration, load_identity_folders, load_identity_roots, write_card

    try:
        with _progress() as progress:
            check = load_identity_roots(check_data) if check_data else None
            result = run_calibration(load_identity_folders(data), rates=tuple(fmr), model=model, detector=detector,
                                     cache_dir=cache_dir, progress=progress, check=check, policy=policy)
        _print(ctx, [result], out, f"Calibration on {data.name}")
        if write:
            path = write_card(result, _command(ctx), note=note, packaged=packaged)
            console.print(f"wrote the thresholds into {path}")
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)


@app.command("open-set")
def open_set(
    ctx: typer.Context,
    data: list[Path] = typer.Option(..., "--data", help="Dataset folder(s) laid out as <person>/<image> (repeat to pool "
                                    "several; people are named <folder>/<person>, so two sets never share a person)."),
    model: str = typer.Option("sface", "--model", help="Embedder (its model card gives the thresholds)."),
    detector: str = typer.Option("yunet", "--detector", help="Detector used to find the faces."),
    aggregation: list[str] = typer.Option(["best"], "--aggregation", help="best or mean_top; repeat to compare."),
    samples: list[int] = typer.Option([1], "--samples", help="Photos enrolled per person; repeat to compare."),
    fpir: float = typer.Option(1e-2, "--fpir", help="Target false-positive identification rate."),
    synthetic: list[int] = typer.Option([], "--synthetic", help="Also reach this many people with synthetic ones (repeat)."),
    synthetic_probes: int = typer.Option(1000, "--synthetic-probes", help="Stranger and mated probes for the synthetic rows."),
    out: Path | None = OUT,
    cache_dir: Path | None = CACHE,
) -> None:
    """Enrol G people, search with their other photos and with strangers, at the gallery's own operating point for G:
    FPIR measured against targeted, DIR and rank-1, for G from 10 to every person the data can enrol."""
    from facesift.evaluation import load_identity_roots
    from facesift.evaluation.openset import evaluate_open_set

    reports = []
    try:
        dataset = load_identity_roots(data)
        with _progress() as progress:
            for count in samples:
                for name in aggregation:
                    reports.append(evaluate_open_set(dataset, roots=data, model=model, detector=detector, aggregation=name,
                                                     samples_per_person=count, fpir=fpir, synthetic=synthetic,
                                                     synthetic_probes=synthetic_probes, cache_dir=cache_dir, progress=progress))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    _print(ctx, reports, out, f"Open-set identification on {', '.join(p.name for p in data)}")


PEOPLE_HALF = typer.Option("all", "--people", help="all, or the people's fit / report half (alternate people in "
                            "sorted order): fit anything on one, report on the other.")


def _half(half: str, split: tuple[list[str], list[str]]) -> list[str] | None:
    if half not in ("all", "fit", "report"):
        raise ValueError(f"--people / --families must be all, fit or report, got {half!r}")
    return {"all": None, "fit": split[0], "report": split[1]}[half]


@app.command("age-gap")
def age_gap(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Folder laid out as <person>/y/<image> (young) beside "
                              "<person>/<image> (adult), or any <person>/<image> set with --ages."),
    ages: Path | None = typer.Option(None, "--ages", help="CSV image,age[,person]: pairs across ages, "
                                        "reported by age gap (instead of the y/ layout)."),
    enrol_photos: list[int] = typer.Option([], "--enrol-photos", help="Also score each young photo against the "
                                           "person enrolled with up to N adult photos (repeat for several N)."),
    aggregation: str = typer.Option("mean_top", "--aggregation", help="How an enrolled person is scored (as the "
                                    "gallery's aggregation): mean_top or best."),
    half: str = PEOPLE_HALF,
    model: list[str] = MODELS,
    detector: list[str] = DETECTORS,
    out: Path | None = OUT,
    cache_dir: Path | None = CACHE,
) -> None:
    """The same person years apart against other people: accuracy, TAR@FAR and the default threshold, by age gap."""
    from facesift.evaluation.agegap import age_gap_people, evaluate_age_gap, split_people

    reports = []
    try:
        people = _half(half, split_people(age_gap_people(data, ages)))
        with _progress() as progress:
            for name, det, _ in _combinations(model, detector, [DEFAULT_FACE_POLICY]):
                for photos in [0, *enrol_photos]:
                    reports.append(evaluate_age_gap(data, ages=ages, model=name, detector=det, enrol_photos=photos,
                                                    aggregation=aggregation, people=people, cache_dir=cache_dir, progress=progress))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    _print(ctx, reports, out, f"Age gap on {data.name}")


@app.command()
def kin(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Folder laid out as <family>/<member>/<image>."),
    relationships: Path = typer.Option(..., "--relationships", help="CSV p1,p2[,type] of related members "
                                       "(<family>/<member>)."),
    model: list[str] = MODELS,
    detector: list[str] = DETECTORS,
    half: str = typer.Option("all", "--families", help="all, or the families' fit / report half (alternate "
                             "families in sorted order): calibrate on one, report on the other."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Write relative-safe thresholds (relatives' "
                                   "false-match rates 1e-1, 1e-2, 1e-3) into the model card first."),
    packaged: bool = typer.Option(False, "--packaged", help="Maintainers: write into the card shipped in "
                                  "facesift/recognition/cards/."),
    out: Path | None = OUT,
    cache_dir: Path | None = CACHE,
) -> None:
    """Relatives as impostors: false-match rate among relatives beside strangers at each operating point."""
    from facesift.evaluation.kinship import calibrate_relatives, evaluate_kin, load_kin, split_families, write_relative_thresholds

    reports = []
    try:
        families = _half(half, split_families(load_kin(data, relationships)))
        with _progress() as progress:
            for name, det, _ in _combinations(model, detector, [DEFAULT_FACE_POLICY]):
                if calibrate:
                    thresholds = calibrate_relatives(data, relationships, model=name, detector=det, families=families,
                                                     cache_dir=cache_dir, progress=progress)
                    path = write_relative_thresholds(name, thresholds, _command(ctx), packaged=packaged)
                    console.print(f"wrote relative-safe thresholds {thresholds} into {path}")
                reports.append(evaluate_kin(data, relationships, model=name, detector=det, families=families,
                                            cache_dir=cache_dir, progress=progress))
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    _print(ctx, reports, out, f"Relatives as impostors on {data.name}")


@app.command("template-aging")
def template_aging(
    data: Path = typer.Option(..., "--data", help="Folder laid out as <person>/y/<image> beside <person>/<image>."),
    half: str = PEOPLE_HALF,
    max_added: int = typer.Option(5, "--max-added", help="Samples the policy may add per person."),
    model: str = typer.Option("sface", "--model", help="Embedder of the simulated gallery."),
    aggregation: str = typer.Option("best", "--aggregation", help="How the simulated gallery scores a person: best or mean_top."),
) -> None:
    """Simulated profile-photo updates: how often the owner is still recognised, with and without template aging."""
    from facesift.evaluation.agegap import age_gap_people, split_people
    from facesift.evaluation.aging import simulate_template_aging
    from facesift.gallery.template_aging import AgingPolicy

    try:
        people = _half(half, split_people(age_gap_people(data, None)))
        with _progress() as progress:
            result = simulate_template_aging(data, people=people, policy=AgingPolicy(max_added=max_added), model=model,
                                             aggregation=aggregation, progress=progress)
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    table = Table("people", "enrolled young photos", "updates added / offered", "impostor photos added / offered",
                  "last adult photo OWNER: young enrolment %", "after the updates %", "McNemar p",
                  title=f"Template aging on {data.name}")
    table.add_row(str(result.people), str(result.enrolled_photos), f"{result.updates_added} / {result.updates_offered}",
                  f"{result.impostors_added} / {result.impostor_updates}", f"{100 * result.owner_before:.2f}",
                  f"{100 * result.owner_after:.2f}", f"{result.mcnemar_p:.2g}")
    console.print(table)


@app.command()
def analyze(
    ctx: typer.Context,
    age_gender: Path | None = typer.Option(None, "--age-gender", help="UTKFace-style folder (age_gender_race_*.jpg)."),
    emotion: Path | None = typer.Option(None, "--emotion", help="Folder of the seven FER2013 emotion folders."),
    liveness: Path | None = typer.Option(None, "--liveness", help="Folder with live/ and spoof/ (subject = file name's first field)."),
    split: str = typer.Option("held-out", help="held-out (the part training never saw: the shared sets), or all (another set)."),
    race: bool = typer.Option(False, help="Also the race-group head (an audit aid, off by default)."),
    out: Path | None = OUT,
    cache: Path | None = typer.Option(None, "--cache-dir", help="Cache of the prepared faces (default: none)."),
) -> None:
    """Age MAE per age group, gender and emotion accuracy with confusion, liveness APCER/BPCER/ACER with a DET curve."""
    from facesift.analysis.evaluation import evaluate_analysis, write_analysis_report

    if split not in ("held-out", "all"):
        print_error("--split must be held-out or all")
        raise typer.Exit(2)
    if age_gender is None and emotion is None and liveness is None:
        print_error("give at least one of --age-gender, --emotion, --liveness")
        raise typer.Exit(2)
    try:
        reports = evaluate_analysis(age_gender=age_gender, emotion=emotion, liveness=liveness, part=split, cache=cache, race=race)
    except FacesiftError as exc:
        exit_with_error(exc)
    for report in reports:
        keys = list(dict.fromkeys(k for row in report.breakdown for k in row))
        table = Table(*keys, title=f"{report.action}: {report.headline} {report.value} ({report.faces} faces, {report.split})")
        for row in report.breakdown:
            table.add_row(*[str(row.get(k, "")) for k in keys])
        console.print(table)
        for note in report.notes:
            console.print(f"[dim]{note}[/]")
    if out is not None:
        errors.print(f"wrote {write_analysis_report(out, reports, _command(ctx))}")


@app.command()
def quality(
    ctx: typer.Context,
    data: list[Path] = typer.Option(..., "--data", help="Dataset folder laid out as <person>/<image>; repeat to pool "
                                    "the same-person comparisons of several."),
    pairs_file: Path | None = typer.Option(None, "--pairs", help="Use the same-person pairs of this pairs file "
                                              "(one --data) instead of every same-person pair."),
    model: str = typer.Option("sface", "--model", help="Embedder (its card gives the threshold)."),
    detector: str = typer.Option("yunet", "--detector", help="Detector."),
    policy: str = typer.Option("auto", "--policy", help="Which face of a photo with several: auto, largest or central."),
    fmr: float = typer.Option(1e-3, "--fmr", help="False-match rate of the card's threshold the comparisons are decided at."),
    out: Path | None = OUT,
    cache_dir: Path | None = CACHE,
) -> None:
    """Error-versus-discard curves (ISO/IEC 29794-1) of the quality score and each factor, and the measured risk of
    each quality limit: which faces are really unusable."""
    from facesift.evaluation import load_identity_folders
    from facesift.evaluation.quality import curve_table, evaluate_quality, quality_table, write_quality_report

    try:
        with _progress() as progress:
            report = evaluate_quality([load_identity_folders(d) for d in data], pairs=pairs_file, model=model,
                                      detector=detector, policy=policy, false_match_rate=fmr, cache_dir=cache_dir,
                                      progress=progress)
    except (FacesiftError, FileNotFoundError, ValueError) as exc:
        exit_with_error(exc)
    console.print(f"{report.genuine_pairs:,} same-person comparisons, FNMR {100 * report.fnmr:.2f} % at "
                  f"{report.threshold:.4f} (FMR {fmr:g}); the limits refuse {100 * report.refused_share:.2f} % of the faces")
    for heading, (header, rows) in (("Error versus discard", curve_table(report)), ("Quality limits", quality_table(report))):
        table = Table(*header, title=heading)
        for row in rows:
            table.add_row(*row)
        table_console().print(table)
    if out is not None:
        try:
            path = write_quality_report(out, report, command=_command(ctx))
        except ImportError as exc:
            exit_with_error(exc)
        errors.print(f"wrote {path} with results.json and plots")
