#!/usr/bin/env bash
# Sets up $VENV (default .venv) with the dev requirements, installs the browser and Fashion-MNIST
# from Debian when run as root, then runs ruff and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
REQUIREMENTS=requirements-dev.txt bash scripts/setup.sh
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} from Debian"
    (apt-get install -y -q "${need[@]}" >/dev/null 2>&1) \
      || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${need[@]}" >/dev/null) \
      || echo "could not install ${need[*]}; the tests that need them will skip and say why"
  fi
fi
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
exec "$VENV/bin/python" -m pytest "$@"
