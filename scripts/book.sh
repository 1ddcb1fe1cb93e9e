#!/usr/bin/env bash
# Open the book in JupyterLab. Creates .venv and installs everything on first use.
source "$(dirname "$0")/_env.sh"
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)   # containers and CI often run as root
exec jupyter lab "${extra[@]}" chapters/ "$@"
