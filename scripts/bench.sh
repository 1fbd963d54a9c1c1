#!/usr/bin/env bash
# Flow Lab's benchmark against normflows, nflows, zuko and plain PyTorch (see bench/NOTES.md).
#   bash scripts/bench.sh --quick      # under two minutes on 2 idle cores
#   bash scripts/bench.sh              # the full run (about 15 minutes), appended to bench/RESULTS.md
#   bash scripts/bench.sh --help       # every option
# Creates (or reuses) $VENV (default .venv-bench): torch pinned first, then requirements-bench.txt,
# whose peer libraries accept that torch and so never replace it.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv-bench}
REQUIREMENTS=requirements-bench.txt bash scripts/setup.sh
exec "$VENV/bin/python" -m bench "$@"
