#!/usr/bin/env bash
# Sets up .venv (first run only takes a minute) and starts the dashboard: streamlit run streamlit_app.py
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/streamlit run streamlit_app.py "$@"
