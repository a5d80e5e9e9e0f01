"""Does a quality measure predict recognition errors? Error-versus-discard curves and the risk of each refusal.

An error-versus-discard curve (EDC, ISO/IEC 29794-1) takes the genuine (same-person) comparisons, gives each
the lower quality of its two faces, discards the lowest-quality fraction and plots the false non-match rate
(FNMR) of the rest at a fixed threshold: the model card's at a false-match rate of 1e-3, the one the gallery
and ``verify`` decide with. A measure that predicts errors drops the curve fast; a flat curve means refusing
on it throws good faces away.

Each limit of a :class:`~facesift.quality.QualityPolicy` is measured the same way: the share of images it
refuses and the FNMR of the comparisons that involve a refused face (its *risk*: how often a genuine photo of
the person fails to match it) against the FNMR of the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from facesift.evaluation.datasets import IdentityDataset, read_pairs
from facesift.evaluation.embeddings import embed_images
from facesift.evaluation.pairs import ProgressCallback, _progress
from facesift.pipeline import DEFAULT_FACE_POLICY
from facesift.quality import DEFAULT_POLICY, QualityMeasures, QualityPolicy, judge, quality_score
from facesift.recognition.base import load_card
from facesift.results import Serialisable, unserialised

#: per face, higher is better: what each curve discards by
FACTORS: dict[str, Callable[[QualityMeasures, QualityPolicy], float]] = {
    "quality score": lambda m, p: quality_score(m, p),
    "yaw": lambda m, p: -abs(m.yaw),
    "pitch": lambda m, p: -abs(m.pitch),
    "roll": lambda m, p: -abs(m.roll),
    "sharpness": lambda m, p: m.sharpness,
    "eye distance": lambda m, p: m.eye_distance,
    "brightness": lambda m, p: -abs(m.brightness - 128.0),
    "contrast": lambda m, p: m.contrast,
    "detector score": lambda m, p: m.detector_score,
}
#: each limit of the policy: the value it reads off a face, and whether a face fails it below (min) or above (max)
LIMITS: dict[str, tuple[Callable[[QualityMeasures], float], str]] = {
    "min_eye_distance": (lambda m: m.eye_distance, "min"),
    "min_detector_score": (lambda m: m.detector_score, "min"),
    "min_sharpness": (lambda m: m.sharpness, "min"),
    "max_abs_yaw": (lambda m: abs(m.yaw), "max"),
    "max_abs_pitch": (lambda m: abs(m.pitch), "max"),
    "max_abs_roll": (lambda m: abs(m.roll), "max"),
    "min_brightness": (lambda m: m.brightness, "min"),
    "max_brightness": (lambda m: m.brightness, "max"),
    "min_contrast": (lambda m: m.contrast, "min"),
}
#: a face is *unusable* when genuine photos of its person fail to match it at least this often (at the card's
#: threshold): a limit is suggested where the faces beyond it, together, fail that often
UNUSABLE_FNMR = 0.5
#: ... and only from at least this many faces beyond it
MIN_FACES = 20
DISCARD = np.round(np.linspace(0.0, 0.3, 31), 3)


@dataclass(frozen=True)
class Curve(Serialisable):
    """FNMR of the genuine comparisons kept after discarding the lowest-quality ``discarded`` fraction."""

    factor: str
    discarded: tuple[float, ...]
    fnmr: tuple[float, ...]
    #: mean FNMR over the discard range: lower is a better predictor (the ideal removes every error first)
    area: float


@dataclass(frozen=True)
class LimitRisk(Serialisable):
    """What one limit of the policy refuses on this data, and how often the refused faces fail to match."""

    limit: str
    value: float
    refused_images: int
    refused_share: float
    pairs_with_refused: int
    fnmr_with_refused: float | None
    fnmr_without: float | None
    #: the loosest value whose refused faces fail at least UNUSABLE_FNMR of their genuine comparisons (None: no
    #: MIN_FACES faces on this data are that bad, so the data gives no reason to refuse on this measure)
    suggested: float | None = None
    suggested_refuses: float = 0.0


@dataclass(frozen=True)
class QualityReport(Serialisable):
    """EDC curves per quality factor and the measured risk of each limit, on the genuine comparisons of ``datasets``."""

    datasets: tuple[str, ...]
    model: str
    detector: str
    policy: str
    threshold: float
    false_match_rate: float
    images: int
    failed_images: int
    genuine_pairs: int
    fnmr: float
    refused_share: float
    curves: tuple[Curve, ...]
    limits: tuple[LimitRisk, ...]
    quality_policy: dict[str, float]
    notes: tuple[str, ...]
    seconds: float
    #: per image with a face: (dataset index, path, per-image FNMR over its genuine pairs, measures) for plots
    per_image: list = unserialised(compare=False, default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model}+{self.detector}"


def edc(pair_quality: np.ndarray, failed: np.ndarray, discarded: Sequence[float] = DISCARD) -> np.ndarray:
    """FNMR after discarding the lowest-quality fraction of genuine comparisons (ties broken by input order)."""
    order = np.argsort(pair_quality, kind="stable")
    fails = failed[order].astype(float)
    after = np.concatenate([[fails.sum()], fails.sum() - np.cumsum(fails)])  # errors left after dropping k
    out = []
    for fraction in discarded:
        k = round(fraction * fails.size)
        out.append(after[k] / max(fails.size - k, 1))
    return np.array(out)


def evaluate_quality(
    datasets: Sequence[IdentityDataset],
    *,
    pairs: str | Path | None = None,
    model: str = "sface",
    detector: str = "yunet",
    policy: str = DEFAULT_FACE_POLICY,
    quality_policy: QualityPolicy = DEFAULT_POLICY,
    false_match_rate: float = 1e-3,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> QualityReport:
    """EDC curves and limit risks on every same-person pair of ``datasets`` (or the same-person pairs of a
    pairs file, for a single dataset), at the card's threshold for ``false_match_rate``."""
    started = time.perf_counter()
    if pairs is not None and len(datasets) != 1:
        raise ValueError("A pairs file belongs to one dataset; give one --data with --pairs")
    threshold = load_card(model).threshold_for(false_match_rate)
    rows_a, rows_b, fail_list, measures, paths, origin = [], [], [], [], [], []
    failed_images = 0
    for number, dataset in enumerate(datasets):
        images = list(dataset.images)
        if pairs is not None:
            same = [p for p in read_pairs(pairs, dataset.root) if p.same]
            images = list(dict.fromkeys([p.a for p in same] + [p.b for p in same]))
        found = embed_images(images, model=model, detector=detector, cache_dir=cache_dir, policy=policy,
                             progress=_progress(progress, f"Embedding {dataset.root.name} ({model}, {detector})"))
        usable = [image for image in images if found.vectors[image] is not None]
        failed_images += len(images) - len(usable)
        offset = len(paths)
        index = {image: offset + k for k, image in enumerate(usable)}
        paths += usable
        origin += [number] * len(usable)
        measures += [found.measures[image] for image in usable]
        vectors = np.stack([found.vectors[image] for image in usable])
        if pairs is not None:
            kept = [(index[p.a] - offset, index[p.b] - offset) for p in same if p.a in index and p.b in index]
            a, b = (np.array(side, int) for side in zip(*kept, strict=True))
        else:
            label_of = dict(zip(dataset.images, dataset.labels, strict=True))
            a, b = _genuine_rows(np.array([label_of[image] for image in usable]))
        scores = np.einsum("ij,ij->i", vectors[a], vectors[b])
        a, b = a + offset, b + offset
        rows_a.append(a)
        rows_b.append(b)
        fail_list.append(scores < threshold)
    a, b, failed = np.concatenate(rows_a), np.concatenate(rows_b), np.concatenate(fail_list)
    if not failed.size:
        raise ValueError("No same-person pairs with a face on both sides: nothing to measure")
    curves = []
    for name, value in FACTORS.items():
        per_face = np.array([value(m, quality_policy) for m in measures])
        fnmr = edc(np.minimum(per_face[a], per_face[b]), failed)
        curves.append(Curve(name, tuple(map(float, DISCARD)), tuple(map(float, fnmr)), float(fnmr.mean())))
    limits = tuple(_limit_risk(name, quality_policy, measures, a, b, failed) for name in LIMITS)
    refused = np.array([not judge(m, quality_policy).acceptable for m in measures])
    per_face_fails = np.bincount(a, failed, len(paths)) + np.bincount(b, failed, len(paths))
    per_face_pairs = np.bincount(a, minlength=len(paths)) + np.bincount(b, minlength=len(paths))
    per_image = [(origin[k], str(paths[k]), float(per_face_fails[k] / per_face_pairs[k]) if per_face_pairs[k] else None,
                  measures[k]) for k in range(len(paths))]
    notes = (
        f"genuine comparisons decided at the {model} card's threshold {threshold:.4f} (false-match rate {false_match_rate:g});"
        " a comparison's quality is the lower of its two faces'",
        "a limit's risk: the FNMR of the comparisons that involve a face it refuses, against the FNMR of the rest",
        f"suggested limit: the loosest value whose refused faces (at least {MIN_FACES}) fail at least "
        f"{100 * UNUSABLE_FNMR:.0f} % of their genuine comparisons, pooled ('none': no such faces, no reason to refuse)",
    )
    return QualityReport(
        datasets=tuple(str(d.root) for d in datasets), model=model, detector=detector, policy=policy,
        threshold=threshold, false_match_rate=false_match_rate, images=len(paths) + failed_images,
        failed_images=failed_images, genuine_pairs=int(failed.size), fnmr=float(failed.mean()),
        refused_share=float(refused.mean()), curves=tuple(curves), limits=limits,
        quality_policy={name: float(getattr(quality_policy, name)) for name in LIMITS}, notes=notes,
        seconds=time.perf_counter() - started, per_image=per_image,
    )


def _genuine_rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (i, j), i < j, of every same-person pair, in the order ``all_pair_scores`` gives their scores."""
    first, second = [], []
    for i in range(len(labels)):
        j = np.flatnonzero(labels[i + 1 :] == labels[i]) + i + 1
        first.append(np.full(j.size, i))
        second.append(j)
    return np.concatenate(first).astype(int), np.concatenate(second).astype(int)


def _limit_risk(name: str, policy: QualityPolicy, measures: list[QualityMeasures], a: np.ndarray, b: np.ndarray,
                failed: np.ndarray) -> LimitRisk:
    value = float(getattr(policy, name))
    read, side = LIMITS[name]
    values = np.array([read(m) for m in measures])
    refused = values < value if side == "min" else values > value
    involved = refused[a] | refused[b]

    def rate(mask: np.ndarray) -> float | None:
        return float(failed[mask].mean()) if mask.any() else None

    suggested, share = _suggest(values, side, a, b, failed)
    return LimitRisk(name, value, int(refused.sum()), float(refused.mean()), int(involved.sum()), rate(involved),
                     rate(~involved), suggested, share)


def _suggest(values: np.ndarray, side: str, a: np.ndarray, b: np.ndarray, failed: np.ndarray) -> tuple[float | None, float]:
    """The loosest limit at which the refused faces fail at least UNUSABLE_FNMR of their genuine comparisons, both
    all together and the last MIN_FACES of them (those just beyond the limit: no good face is refused for the
    company of worse ones); and the share of faces it refuses."""
    fails = np.bincount(a, failed, values.size) + np.bincount(b, failed, values.size)
    pairs = np.bincount(a, minlength=values.size) + np.bincount(b, minlength=values.size)
    order = np.argsort(values if side == "min" else -values, kind="stable")  # worst first
    total_fails, total_pairs = np.cumsum(fails[order]), np.cumsum(pairs[order])
    window = np.arange(values.size) >= MIN_FACES - 1
    shift = lambda x: np.concatenate([np.zeros(MIN_FACES), x[:-MIN_FACES]])  # noqa: E731 - the sum up to k - MIN_FACES
    last_fails, last_pairs = total_fails - shift(total_fails), total_pairs - shift(total_pairs)
    bad = window & (total_fails >= UNUSABLE_FNMR * total_pairs) & (last_fails >= UNUSABLE_FNMR * last_pairs) & (last_pairs > 0)
    if not bad.any():
        return None, 0.0
    k = int(np.flatnonzero(bad)[-1]) + 1  # refuse the k worst faces
    ranked = values[order]
    beyond = ranked[k - 1] if k == values.size else (ranked[k - 1] + ranked[k]) / 2
    return float(beyond), k / values.size


def risk_by_value(report: QualityReport, factor: str, bins: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image FNMR (how often a genuine photo of the person fails to match this face) by bins of one
    measure: (bin centres, mean per-image FNMR, images per bin). Bins hold equal numbers of images."""
    value = {"yaw": lambda m: abs(m.yaw), "pitch": lambda m: abs(m.pitch), "roll": lambda m: abs(m.roll),
             "sharpness": lambda m: m.sharpness, "eye distance": lambda m: m.eye_distance,
             "brightness": lambda m: m.brightness, "contrast": lambda m: m.contrast,
             "detector score": lambda m: m.detector_score}[factor]
    rows = [(value(m), risk) for _, _, risk, m in report.per_image if risk is not None]
    values, risks = (np.array(column, float) for column in zip(*rows, strict=True))
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    centres = np.array([np.median(values[which == k]) for k in range(len(edges) - 1)])
    means = np.array([risks[which == k].mean() for k in range(len(edges) - 1)])
    counts = np.bincount(which, minlength=len(edges) - 1)
    return centres, means, counts


def quality_table(report: QualityReport) -> tuple[list[str], list[list[str]]]:
    """One row per limit: its value, what it refuses, and the FNMR of comparisons with and without a refused face."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}"

    header = ["limit", "value", "images refused", "refused %", "FNMR % with a refused face", "FNMR % without",
              f"where faces fail >= {100 * UNUSABLE_FNMR:.0f} % (refuses %)"]
    rows = [
        [
            r.limit,
            f"{r.value:g}",
            str(r.refused_images),
            pct(r.refused_share),
            f"{pct(r.fnmr_with_refused)} ({r.pairs_with_refused:,} pairs)",
            pct(r.fnmr_without),
            "none" if r.suggested is None else f"{r.suggested:.3g} ({pct(r.suggested_refuses)})",
        ]
        for r in report.limits
    ]
    return header, rows


def curve_table(report: QualityReport) -> tuple[list[str], list[list[str]]]:
    """FNMR after discarding 0, 5, 10 and 20 % of comparisons by each factor, and the mean over 0-30 %."""
    marks = [0.0, 0.05, 0.1, 0.2]
    header = ["factor"] + [f"FNMR % at {100 * m:.0f} % discarded" for m in marks] + ["mean FNMR % (0-30 %)"]
    rows = []
    for curve in report.curves:
        at = dict(zip(curve.discarded, curve.fnmr, strict=True))
        rows.append([curve.factor] + [f"{100 * at[m]:.2f}" for m in marks] + [f"{100 * curve.area:.2f}"])
    return header, rows


def write_quality_report(out: str | Path, report: QualityReport, *, command: str) -> Path:
    """results.json, edc.png, risk.png and report.md in ``out``; returns the report.md path."""
    import datetime as dt
    import json

    from facesift.evaluation.report import markdown_table, versions

    try:
        import matplotlib
    except ImportError:
        raise ImportError("The plots of --out need matplotlib: pip install 'facesift[eval]'") from None
    matplotlib.use("Agg")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record = {"title": "Quality: error versus discard", "command": command, "date": date, "versions": versions(),
              "results": [{"type": "QualityReport"} | report.to_dict()]}
    (out / "results.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    _plot_edc(report, out / "edc.png")
    _plot_risk(report, out / "risk.png")
    lines = [
        "# Quality: error versus discard", "", f"Command: `{command}`", "",
        f"Date: {date}. Data: {', '.join(f'`{d}`' for d in report.datasets)}: {report.images:,} images "
        f"({report.failed_images} without a face), {report.genuine_pairs:,} same-person comparisons, FNMR "
        f"{100 * report.fnmr:.2f} % at threshold {report.threshold:.4f}; the policy's limits refuse "
        f"{100 * report.refused_share:.2f} % of the faces.", "",
        "## Error versus discard", "", markdown_table(*curve_table(report)), "", "![EDC](edc.png)", "",
        "## Each limit and its measured risk", "", markdown_table(*quality_table(report)), "",
        "## Per-face risk by measure (dashed: the policy's limit)", "", "![risk](risk.png)", "",
        "## How these were measured", "", *[f"- {n}" for n in report.notes], "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plot_edc(report: QualityReport, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for curve in report.curves:
        style = dict(linewidth=2.2, color="black") if curve.factor == "quality score" else dict(linewidth=1.2)
        ax.plot(100 * np.array(curve.discarded), 100 * np.array(curve.fnmr), label=curve.factor, **style)
    fractions = np.array(report.curves[0].discarded)
    ideal = np.clip((report.fnmr - fractions) / (1 - fractions), 0, None)
    ax.plot(100 * fractions, 100 * ideal, ":", color="grey", label="ideal (errors first)")
    ax.set_xlabel("comparisons discarded (lowest quality first), %")
    ax.set_ylabel(f"FNMR % at FMR {report.false_match_rate:g}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"EDC, {report.label}: {report.genuine_pairs:,} genuine comparisons", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_risk(report: QualityReport, path: Path) -> None:
    import matplotlib.pyplot as plt

    panels = [("yaw", "max_abs_yaw", "|yaw|, degrees"), ("pitch", "max_abs_pitch", "|pitch|, degrees"),
              ("roll", "max_abs_roll", "|roll|, degrees"), ("sharpness", "min_sharpness", "sharpness"),
              ("eye distance", "min_eye_distance", "eye distance, px"), ("brightness", "min_brightness", "brightness"),
              ("contrast", "min_contrast", "contrast"), ("detector score", "min_detector_score", "detector score")]
    fig, axes = plt.subplots(2, 4, figsize=(10, 4.6), sharey=True)
    for ax, (factor, limit, label) in zip(axes.ravel(), panels, strict=True):
        centres, means, _ = risk_by_value(report, factor)
        ax.plot(centres, 100 * means, "o-", markersize=3)
        ax.axvline(report.quality_policy[limit], linestyle="--", color="red", linewidth=1)
        if factor == "brightness":
            ax.axvline(report.quality_policy["max_brightness"], linestyle="--", color="red", linewidth=1)
        if factor in ("sharpness", "eye distance"):
            ax.set_xscale("log")
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("per-face FNMR %", fontsize=8)
    fig.suptitle(f"How often a genuine photo fails to match a face, by measure ({report.label}, "
                 f"equal-count bins)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
