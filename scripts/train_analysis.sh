#!/usr/bin/env bash
# The analysis heads shipped in facesift/analysis/models, trained from scratch: one command per model
# (needs `pip install -e '.[train]'` and the faces set, $FACESIFT_FACES_DIR or ../shared/faces). Each head
# trains on the training part of its set (UTKFace and FER2013: file folds 1-4; NUAA: subjects 0001-0006),
# calibrates out of fold inside it, and writes its ONNX file and its entry of heads.json. Seeded.
# Time on this machine (2 cores shared by eight developers, 2026-12-03): preparing the faces (detection, alignment,
# SFace) once, about 3 min for NUAA, 15 min for UTKFace and 30 min for FER2013, cached in runs/cache; then about
# 8 min per UTKFace head, 10 min for emotion and 1 min for liveness. On two free cores, a fraction of that.
set -euo pipefail
cd "$(dirname "$0")/.."
for head in age gender race; do
    python -m facesift train analysis "$head" --cache runs/cache "$@"
done
python -m facesift train analysis emotion --cache runs/cache --epochs 60 "$@"
python -m facesift train analysis liveness --cache runs/cache "$@"
