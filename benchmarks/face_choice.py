"""Which face of a photo with several: each face policy against the face that is the person, and what enrolment refuses.

    python benchmarks/face_choice.py [--data celeba300:celeba300-pairs.txt --data deepface ...] [--enrol lag-dev ...]

(``NAME:PAIRS`` keeps the images of that pairs file only, the ones ``evaluate pairs`` already cached.)

For every photo with two or more faces in an identity-folder set, the face that is the person is the one most
like the person's other photos (the mean embedding of their photos with a single face, or of all their other
photos' ``central`` faces when they have none); photos where no face reaches the card's 1e-3 threshold against
that reference are left out (the person is not recognisable in them). Then: how often each policy picks that face,
and, for the ``auto`` score, how often it is right by the ratio of the second-best face's score to the best one's
(where enrolment's ambiguity limit comes from). Second part: the share of each set's first photos per person that
enrolment refuses, with the gallery's rules before this change (largest face, a second face of 40 % of its area
refused, the old quality limits) and now (pick_face, the current QualityPolicy). Faces come from the evaluation
cache (``facesift evaluate`` fills it; this fills it too).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from facesift.evaluation.datasets import read_pairs
from facesift.evaluation.embeddings import cached_faces
from facesift.gallery.gallery import AMBIGUOUS_CHOICE_RATIO, pick_face
from facesift.pipeline import choice_scores, select_faces
from facesift.quality import DEFAULT_POLICY, QualityPolicy, judge
from facesift.recognition import load_card
from facesift.results import FaceEmbedding

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESIFT_FACES_DIR", REPO.parent / "shared" / "faces"))
POLICIES = ("auto", "largest", "central")
#: the limits enrolment used before they were measured (docs/quality.md)
OLD_POLICY = QualityPolicy(12.0, 0.7, 50.0, 45.0, 35.0, 25.0, 40.0, 220.0, 15.0)


def people_of(root: Path) -> dict[str, list[Path]]:
    """person -> sorted image files; nested layouts (fiw-dev's F<family>/MID<member>/) count each leaf folder."""
    found: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.rglob("*") if p.is_dir() and not p.name.startswith(("_", "."))):
        if folder.name == "y":  # lag-dev: the young photos of the adult beside them
            continue
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".pgm", ".gif"))
        if files:
            found[str(folder.relative_to(root))] = files
    return found


def face_choice(root: Path, threshold: float, pairs: Path | None) -> tuple[dict[str, int], list[tuple[float, bool]], int]:
    people = people_of(root)
    if pairs is not None:
        listed = {image for pair in read_pairs(pairs, root) for image in (pair.a, pair.b)}
        people = {person: [p for p in files if p in listed] for person, files in people.items()}
    entries, _, _ = cached_faces([p for files in people.values() for p in files])
    correct = dict.fromkeys(POLICIES, 0)
    ratios: list[tuple[float, bool]] = []
    judged = 0
    for files in people.values():
        for image in files:
            entry = entries[image]
            if len(entry.scores) < 2:
                continue
            others = [entries[p] for p in files if p != image and not entries[p].reason]
            single = [e.vectors[0] for e in others if len(e.scores) == 1]
            if single:
                reference = np.mean(single, axis=0)
            elif others:
                reference = np.mean([_pick(e, "central") for e in others], axis=0)
            else:
                continue
            similarity = entry.vectors @ (reference / np.linalg.norm(reference))
            if similarity.max() < threshold:
                continue
            truth = int(np.argmax(similarity))
            judged += 1
            faces = entry.face_list("yunet")
            for policy in POLICIES:
                correct[policy] += faces.index(select_faces(faces, policy, entry.size)[0]) == truth
            scores = np.sort(choice_scores(faces, entry.size))[::-1]
            ratios.append((float(scores[1] / scores[0]) if scores[0] else 1.0,
                           int(np.argmax(choice_scores(faces, entry.size))) == truth))
    return correct, ratios, judged


def _pick(entry, policy: str) -> np.ndarray:
    faces = entry.face_list("yunet")
    return entry.vectors[faces.index(select_faces(faces, policy, entry.size)[0])]


def refusals(root: Path) -> dict[str, dict[str, int]]:
    """Per rule set: how many first photos are refused, and why (multiple faces, each quality reason)."""
    firsts = [files[0] for files in people_of(root).values()]
    entries, _, _ = cached_faces(firsts)
    out = {"before": {"photos": len(firsts)}, "now": {"photos": len(firsts)}}
    for image in firsts:
        entry = entries[image]
        if entry.reason:
            for rules in out.values():
                _count(rules, "no face")
            continue
        faces = entry.face_list("yunet")
        measures = [entry.measures_of(k) for k in range(len(faces))]
        # before: the largest face; a second face of 40 % of its area refused the photo
        order = sorted(range(len(faces)), key=lambda k: -faces[k].area)
        if len(faces) > 1 and faces[order[1]].area >= 0.4 * faces[order[0]].area:
            _count(out["before"], "multiple faces")
        else:
            _count_quality(out["before"], judge(measures[order[0]], OLD_POLICY).reasons)
        embedded = [
            FaceEmbedding(f, judge(m, DEFAULT_POLICY), entry.vectors[k], "sface")
            for k, (f, m) in enumerate(zip(faces, measures, strict=True))
        ]
        chosen, _ = pick_face(embedded, entry.size)
        if chosen is None:
            _count(out["now"], "multiple faces")
        else:
            _count_quality(out["now"], chosen.quality.reasons)
    return out


def _count(tally: dict[str, int], reason: str) -> None:
    tally[reason] = tally.get(reason, 0) + 1
    tally["refused"] = tally.get("refused", 0) + 1


def _count_quality(tally: dict[str, int], reasons: tuple[str, ...]) -> None:
    if not reasons:
        return
    tally["refused"] = tally.get("refused", 0) + 1
    for reason in reasons:
        kind = reason.split(":")[0]
        tally[kind] = tally.get(kind, 0) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", help="identity-folder sets under the shared faces (repeat)")
    parser.add_argument("--enrol", action="append", help="sets whose first photos per person are enrolled (repeat)")
    args = parser.parse_args()
    threshold = load_card("sface").threshold_for(1e-3)
    print(f"## Face choice on photos with several faces (truth: the face most like the person's other photos, "
          f">= {threshold:.4f})\n")
    print("| set | photos judged | " + " | ".join(f"{p} right" for p in POLICIES) + " |")
    print("|---|---|" + "---|" * len(POLICIES))
    every: list[tuple[float, bool]] = []
    for spec in args.data or ["celeba300:celeba300-pairs.txt", "deepface"]:
        name, _, pairs = spec.partition(":")
        correct, ratios, judged = face_choice(FACES / name, threshold, FACES / pairs if pairs else None)
        every += ratios
        print(f"| {name} | {judged} | " + " | ".join(f"{correct[p]} ({100 * correct[p] / max(judged, 1):.1f} %)" for p in POLICIES) + " |")
    print(f"\n## auto right by second-best / best score (enrolment refuses at >= {AMBIGUOUS_CHOICE_RATIO})\n")
    print("| ratio | photos | auto right |")
    print("|---|---|---|")
    edges = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01]
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        chosen = [ok for ratio, ok in every if low <= ratio < high]
        if chosen:
            print(f"| {low:.1f}-{min(high, 1.0):.1f} | {len(chosen)} | {100 * np.mean(chosen):.1f} % |")
    print("\n## Enrolment refusals of each person's first photo: before (largest face, 40 % area rule, old limits) and now\n")
    print("| set | photos | refused before | refused now | why now |")
    print("|---|---|---|---|---|")
    for name in args.enrol or ["celeba300", "lag-dev", "fiw-dev"]:
        tally = refusals(FACES / name)
        before, now = tally["before"], tally["now"]
        why = ", ".join(f"{k} {v}" for k, v in sorted(now.items()) if k not in ("photos", "refused"))
        why_before = ", ".join(f"{k} {v}" for k, v in sorted(before.items()) if k not in ("photos", "refused"))
        print(f"| {name} | {before['photos']} | {before.get('refused', 0)} ({100 * before.get('refused', 0) / before['photos']:.1f} %: "
              f"{why_before}) | {now.get('refused', 0)} ({100 * now.get('refused', 0) / now['photos']:.1f} %) | {why or '-'} |")


if __name__ == "__main__":
    main()
