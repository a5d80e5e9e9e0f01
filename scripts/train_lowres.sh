#!/usr/bin/env bash
# The cross-resolution models the pipeline routes small faces to, trained from scratch in one command
# (41 min on 2 free cores, measured 2026-12-03; needs `pip install -e '.[train]'` and the faces set, $FACESIFT_FACES_DIR or
# ../shared/faces). Training data: celeba300 folds 1-5 + pins90, orl, yale, johns; folds 6-10 never seen.
#   1. sface-lowres: SFace fine-tuned on faces shrunk to 7-28 px; takes faces whose eyes are under 6.3 px
#      apart (about 20 px across);
#   2. sface-tiny: sface-lowres fine-tuned further on 6-12 px with the AdaFace margin (its faces carry little
#      identity); takes faces whose eyes are under 3.8 px apart (about 12 px across), with flip test-time
#      augmentation. AdaFace over ArcFace and flip over none were chosen on the training side's folds 1-5
#      pairs, never on the reported folds 6-10.
# Both register themselves in the facesift cache, where the default pipeline finds them (over the shipped ones of the
# same name). Interrupted? Run it again: each step resumes from its checkpoint in runs/. Extra arguments go to both
# steps (e.g. --threads 2). To ship the result inside the package (maintainers): python -m facesift train ship
# sface-lowres sface-tiny, then paste the sha256 lines it prints into SHIPPED_SHA256 (facesift/recognition/trained.py).
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--distill 10 --low-res-probability 0.9 --batch-people 16 --batch-images 4 --lr 0.001
        --eval-pairs 200 --cache runs/cache "$@")
python -m facesift train crossres "${common[@]}" --loss arcface --epochs 3 --min-size 7 --max-size 28 --below 6.3 \
    --output runs/crossres
python -m facesift train crossres "${common[@]}" --loss adaface --epochs 2 --min-size 6 --max-size 12 --below 3.8 \
    --init runs/crossres/sface-lowres.onnx --name sface-tiny --flip --output runs/crossres-tiny
