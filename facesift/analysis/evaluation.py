"""``facesift evaluate analyze``: the heads measured on the held-out part of a set (or all of another one).

Age: mean absolute error overall and per age group. Gender: accuracy overall and per race group and age
group. Emotion: accuracy and the confusion matrix. Race (audit only): per-group confusion. Liveness: the
ISO/IEC 30107-3 error rates at the shipped operating point (APCER: attacks accepted as live; BPCER: live
faces rejected; ACER their mean), APCER at BPCER 5 % and a DET curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from facesift.analysis.analyzer import analyze_faces
from facesift.analysis.data import AGE_GROUPS, EMOTIONS, RACES, Split, prepared, read_emotions, read_liveness, read_utkface, split
from facesift.results import Serialisable


@dataclass(frozen=True)
class AnalysisReport(Serialisable):
    """One head on one set: the headline number, its breakdowns, and what was measured how."""

    action: str
    dataset: str
    split: str
    faces: int
    headline: str
    value: float
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    labels: tuple[str, ...] = ()
    curve: dict[str, list[float]] | None = None
    notes: tuple[str, ...] = ()


def _age_group(age: float) -> str:
    return next(name for name, low, high in AGE_GROUPS if low <= age <= high)


def _confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> list[list[int]]:
    matrix = np.zeros((classes, classes), int)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix.tolist()


def _detector_note(faces) -> str:
    whole = sum(d == "none" for d in faces.detector)
    return f"{len(faces.detector) - whole} faces found by YuNet, {whole} taken as the whole image (detector none)"


def evaluate_age_gender(folder: Path, part: Split, cache: Path | None, progress=None, with_race: bool = False) -> list[AnalysisReport]:
    samples = read_utkface(folder)
    faces = prepared(samples, cache, progress)
    keep = np.array([s in set(split(samples, part)) for s in samples])
    chosen = [s for s, k in zip(samples, keep, strict=True) if k]
    actions = ("age", "gender", "race") if with_race else ("age", "gender")
    found = analyze_faces(list(faces.crops[keep]), faces.embeddings[keep], actions)
    ages = np.array([s.age for s in chosen])
    predicted = np.array([a.years for a in found["age"]])
    groups = np.array([_age_group(a) for a in ages])
    errors = np.abs(predicted - ages)
    inside = np.array([a.low <= t <= a.high for a, t in zip(found["age"], ages, strict=True)])
    age_rows = [{"group": name, "faces": int((groups == name).sum()), "mae": round(float(errors[groups == name].mean()), 2),
                 "interval_coverage": round(float(inside[groups == name].mean()), 3)}
                for name, _, _ in AGE_GROUPS if (groups == name).any()]
    notes = (_detector_note(faces), f"interval coverage overall {inside.mean():.1%} (the card promises {found['age'][0].coverage:.0%})")
    reports = [AnalysisReport("age", str(folder), part, len(chosen), "MAE (years)", round(float(errors.mean()), 2), age_rows, notes=notes)]
    truth = np.array([s.gender for s in chosen])
    said = np.array([int(g.label == "woman") for g in found["gender"]])
    races = np.array([s.race for s in chosen])
    rows = [
        {"group": f"age {name}", "faces": int((groups == name).sum()), "accuracy": round(float((said == truth)[groups == name].mean()), 4)}
        for name, _, _ in AGE_GROUPS
        if (groups == name).any()
    ]
    rows += [{"group": f"race {name}", "faces": int((races == k).sum()), "accuracy": round(float((said == truth)[races == k].mean()), 4)}
             for k, name in enumerate(RACES) if (races == k).any()]
    reports.append(AnalysisReport("gender", str(folder), part, len(chosen), "accuracy", round(float((said == truth).mean()), 4), rows,
                                  _confusion(truth, said, 2), ("man", "woman"), notes=notes[:1]))
    if with_race:
        known = races >= 0
        said_race = np.array([RACES.index(r.dominant) for r in found["race"]])
        matrix = _confusion(races[known], said_race[known], len(RACES))
        rows = [{"group": name, "faces": int(sum(matrix[k])), "recall": round(matrix[k][k] / max(1, sum(matrix[k])), 4)}
                for k, name in enumerate(RACES)]
        reports.append(AnalysisReport("race", str(folder), part, int(known.sum()), "accuracy (audit aid only)",
                                      round(float((said_race == races)[known].mean()), 4), rows, matrix, RACES, notes=notes[:1]))
    return reports


def evaluate_emotion(folder: Path, part: Split, cache: Path | None, progress=None) -> AnalysisReport:
    samples = read_emotions(folder)
    faces = prepared(samples, cache, progress)
    keep = np.array([s in set(split(samples, part)) for s in samples])
    truth = np.array([s.emotion for s, k in zip(samples, keep, strict=True) if k])
    found = analyze_faces(list(faces.crops[keep]), faces.embeddings[keep], ("emotion",))["emotion"]
    said = np.array([EMOTIONS.index(d.dominant) for d in found])
    matrix = _confusion(truth, said, len(EMOTIONS))
    rows = [
        {"group": name, "faces": int(sum(matrix[k])), "recall": round(matrix[k][k] / max(1, sum(matrix[k])), 4)}
        for k, name in enumerate(EMOTIONS)
    ]
    return AnalysisReport("emotion", str(folder), part, len(truth), "accuracy (7 classes)", round(float((said == truth).mean()), 4),
                          rows, matrix, EMOTIONS, notes=(_detector_note(faces),))


def iso_rates(live_scores: np.ndarray, attack_scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """(APCER, BPCER) at ``threshold``: attacks scored live (>= threshold), live faces scored attack."""
    return float(np.mean(attack_scores >= threshold)), float(np.mean(live_scores < threshold))


def evaluate_liveness(folder: Path, part: Split, cache: Path | None, progress=None) -> AnalysisReport:
    samples = read_liveness(folder)
    faces = prepared(samples, cache, progress)
    chosen_set = set(split(samples, part, by_subject=True))
    keep = np.array([s in chosen_set for s in samples])
    live = np.array([s.live for s, k in zip(samples, keep, strict=True) if k])
    found = analyze_faces(list(faces.crops[keep]), faces.embeddings[keep], ("liveness",))["liveness"]
    scores = np.array([c.score for c in found])
    threshold = found[0].threshold
    apcer, bpcer = iso_rates(scores[live == 1], scores[live == 0], threshold)
    cuts = np.unique(np.concatenate([scores, [0.0, 1.0 + 1e-9]]))
    curve = [iso_rates(scores[live == 1], scores[live == 0], t) for t in cuts]
    at_five = min((a for a, b in curve if b <= 0.05), default=1.0)
    subjects = sorted({s.group for s in chosen_set})
    rows = [{"group": "at the shipped threshold", "threshold": threshold, "apcer": round(apcer, 4), "bpcer": round(bpcer, 4),
             "acer": round((apcer + bpcer) / 2, 4)},
            {"group": "APCER at BPCER <= 5 % (threshold chosen on these faces: for comparison only)", "apcer": round(at_five, 4)}]
    notes = (
        _detector_note(faces),
        f"subjects {', '.join(subjects)}; {int((live == 1).sum())} live and {int((live == 0).sum())} attack frames",
        f"operating point: {found[0].operating_point}",
        "a passive single-image check is not proof against every attack (screens, masks, other printers and cameras)",
    )
    return AnalysisReport("liveness", str(folder), part, len(live), "ACER at the shipped threshold", round((apcer + bpcer) / 2, 4), rows,
                          curve={"apcer": [a for a, _ in curve], "bpcer": [b for _, b in curve]}, notes=notes)


def evaluate_analysis(
    *, age_gender: Path | None, emotion: Path | None, liveness: Path | None, part: Split = "held-out",
    cache: Path | None = None, race: bool = False, progress: Callable[[int], None] | None = None,
) -> list[AnalysisReport]:
    """Every head whose set is given, on that set's ``part``."""
    reports: list[AnalysisReport] = []
    if age_gender is not None:
        reports += evaluate_age_gender(age_gender, part, cache, progress, with_race=race)
    if emotion is not None:
        reports.append(evaluate_emotion(emotion, part, cache, progress))
    if liveness is not None:
        reports.append(evaluate_liveness(liveness, part, cache, progress))
    return reports


def write_analysis_report(out: Path, reports: list[AnalysisReport], command: str) -> Path:
    """results.json, a confusion plot per classifier, the DET curve and report.md in ``out``."""
    import json

    from facesift.evaluation.report import versions

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps({"command": command, "versions": versions(), "results": [r.to_dict() for r in reports]}, indent=1) + "\n"
    )
    lines = ["# facesift analysis evaluation", "", f"Command: `{command}`", ""]
    plots = _plots(reports, out)
    for r in reports:
        lines += [f"## {r.action}: {r.headline} {r.value} ({r.faces} faces, {r.split} part of `{r.dataset}`)", ""]
        if r.breakdown:
            keys = list(dict.fromkeys(k for row in r.breakdown for k in row))
            lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in r.breakdown] + [""]
        if r.confusion is not None:
            lines += [
                "Confusion (rows: truth, columns: predicted):",
                "",
                "| | " + " | ".join(r.labels) + " |",
                "|---|" + "---|" * len(r.labels),
            ]
            lines += [f"| {name} | " + " | ".join(map(str, row)) + " |" for name, row in zip(r.labels, r.confusion, strict=True)] + [""]
        lines += [f"- {n}" for n in r.notes] + [""]
        lines += [f"![{r.action}]({plots[r.action]})", ""] if r.action in plots else []
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plots(reports: list[AnalysisReport], out: Path) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from scipy.stats import norm
    except ImportError:
        return {}
    made = {}
    for r in reports:
        if r.curve is not None:
            figure, axis = plt.subplots(figsize=(4.5, 4.5))
            apcer, bpcer = (np.clip(np.asarray(r.curve[k]), 1e-3, 1 - 1e-3) for k in ("apcer", "bpcer"))
            axis.plot(norm.ppf(bpcer), norm.ppf(apcer), drawstyle="steps-post")
            ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5])
            axis.set_xticks(norm.ppf(ticks), [f"{t:.1%}" for t in ticks])
            axis.set_yticks(norm.ppf(ticks), [f"{t:.1%}" for t in ticks])
            axis.set_xlim(norm.ppf(5e-4), norm.ppf(0.6))
            axis.set_ylim(norm.ppf(5e-4), norm.ppf(0.6))
            axis.set_xlabel("BPCER (live faces rejected)")
            axis.set_ylabel("APCER (attacks accepted)")
            axis.set_title(f"liveness DET, {r.faces} faces")
            axis.grid(alpha=0.3)
        elif r.confusion is not None:
            matrix = np.asarray(r.confusion, float)
            matrix = matrix / np.maximum(1, matrix.sum(1, keepdims=True))
            figure, axis = plt.subplots(figsize=(1 + 0.6 * len(r.labels), 1 + 0.6 * len(r.labels)))
            axis.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
            axis.set_xticks(range(len(r.labels)), r.labels, rotation=45, ha="right")
            axis.set_yticks(range(len(r.labels)), r.labels)
            for (i, j), v in np.ndenumerate(matrix):
                axis.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
            axis.set_title(f"{r.action}: {r.headline} {r.value}")
        else:
            continue
        figure.tight_layout()
        name = f"{r.action}.png"
        figure.savefig(out / name, dpi=100)
        plt.close(figure)
        made[r.action] = name
    return made
