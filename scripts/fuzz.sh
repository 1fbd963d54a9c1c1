#!/usr/bin/env bash
# Longer fuzzing of every input parser (tests/test_fuzz.py): N examples per parser (default 2000).
# Writes the number of inputs tried per parser to fuzz-report.json (or $FLOWLAB_FUZZ_REPORT) and prints it.
#   bash scripts/fuzz.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
export FLOWLAB_FUZZ_EXAMPLES="${1:-2000}"
export FLOWLAB_FUZZ_REPORT="${FLOWLAB_FUZZ_REPORT:-fuzz-report.json}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_fuzz.py
cat "$FLOWLAB_FUZZ_REPORT"
