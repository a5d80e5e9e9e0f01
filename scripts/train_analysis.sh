#!/usr/bin/env bash
# The analysis heads shipped in facesift/analysis/models, trained from scratch: one command per model
# (needs `pip install -e '.[train]'` and the faces set, $FACESIFT_FACES_DIR or ../shared/faces). Each head
# trains on the training part of its set (UTKFace and FER2013: file folds 1-4; NUAA: subjects 0001-0006),
# calibrates out of fold inside it, and writes its ONNX file and its entry of heads.json. Seeded.
# Time on this machine's 2 cores (2026-12-07): age and gender (one network) 20 min, 5 of them computing SFace's
# maps of six views of each training face (kept in runs/cache, 2.9 GB); emotion about 30 min (maps 10 min,
# 6.8 GB); race and liveness a few minutes each. Preparing each set's faces once (detection, alignment, SFace;
# cached in runs/cache) comes first: measured 2026-12-03 on a heavily loaded machine at 3 min for NUAA, 15 min
# for UTKFace and 56 min for FER2013, a small fraction of that on free cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m facesift train analysis age gender --cache runs/cache "$@"
python -m facesift train analysis race --cache runs/cache "$@"
python -m facesift train analysis emotion --cache runs/cache "$@"
python -m facesift train analysis liveness --cache runs/cache "$@"
