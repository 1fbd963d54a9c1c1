#!/usr/bin/env bash
# Creates (or reuses) the virtual environment $VENV (default .venv) with everything Flow Lab needs.
# torch is installed first, pinned, so pip never resolves a multi-GB CUDA build by accident.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
"$VENV/bin/python" -m pip install --quiet -r "${REQUIREMENTS:-requirements.txt}"
