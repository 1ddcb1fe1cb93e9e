#!/usr/bin/env bash
# Run the book's tests: lint, unit and learning tests, and every chapter notebook under nbval
# in the smoke profile. Creates .venv and installs everything on first use.
source "$(dirname "$0")/_env.sh"
export WMLIB_PROFILE=smoke
export WMLIB_HEADLESS=1  # no widgets under nbval (wmlib.viz.interactive)
ruff check .
python -m pytest tests chapters --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
