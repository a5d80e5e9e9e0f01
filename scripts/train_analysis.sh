#!/usr/bin/env bash
# The analysis heads shipped in facesift/analysis/models, trained from scratch: one command per model
# (needs `pip install -e '.[train]'` and the faces set, $FACESIFT_FACES_DIR or ../shared/faces). Each head
# trains on the training part of its set (UTKFace and FER2013: file folds 1-4; NUAA: subjects 0001-0006),
# calibrates out of fold inside it, and writes its ONNX file and its entry of heads.json. Seeded.
# Time, measured 2026-12-03 on this machine while its 2 cores carried a load of 30-40 (eight developers; the
# process got well under a tenth of a core): preparing the faces once (detection, alignment, SFace; cached in
# runs/cache) 3 min for NUAA, 15 min for UTKFace, 56 min for FER2013; then age 9 min, gender 6, race 5, emotion 5,
# liveness 8 (CPU time: about 1 minute each). On two free cores, a small fraction of that. The gender and
# emotion heads read SFace's trunk (linear, scikit-learn): gender 2 min 45 s with UTKFace's faces prepared
# (2026-12-04, one busy core), emotion 37 min at the lowest priority beside a training run, preparing
# its 7,180 faces included.
set -euo pipefail
cd "$(dirname "$0")/.."
for head in age gender race; do
    python -m facesift train analysis "$head" --cache runs/cache "$@"
done
python -m facesift train analysis emotion --cache runs/cache "$@"
python -m facesift train analysis liveness --cache runs/cache "$@"
