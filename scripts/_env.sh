# Sourced by book.sh and test.sh: create .venv if needed and install the book into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${WMLIB_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || { echo "python3 -m venv failed: install python3-venv (Python 3.10+)"; exit 1; }
fi
. "$VENV/bin/activate"
# torch first, pinned: an unpinned torch (or one pulled in by a dependency) can fetch a large
# CUDA build. Set WMLIB_TORCH to install another build, e.g. WMLIB_TORCH="torch==2.13.0+cu128".
python -c "import torch" 2>/dev/null || python -m pip install -q "${WMLIB_TORCH:-torch==2.13.0}"
python -m pip install -q -e ".[dev,sweep]"
export MUJOCO_GL=${MUJOCO_GL:-egl}
