#!/usr/bin/env bash
# Open the book in JupyterLab. Creates .venv and installs everything on first use.
source "$(dirname "$0")/_env.sh"
exec jupyter lab chapters/ "$@"
