#!/usr/bin/env bash
# Create /work/main/.venv-ray (next to the repo root) with the Ray version used
# as the comparison baseline for benchmarks/microbenchmark.py.  Idempotent:
# re-running is a no-op when the venv already has the right versions.
#
# Override the version with RAY_VERSION=2.59.0 bash benchmarks/setup_ray_venv.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RAY_VENV:-$ROOT/.venv-ray}"
RAY_VERSION="${RAY_VERSION:-2.60.0}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $("$PY" -V)"
    "$PY" -m venv "$VENV"
fi

have="$("$VENV/bin/python" -c 'import ray, numpy, psutil; print(ray.__version__)' 2>/dev/null || true)"
if [ "$have" = "$RAY_VERSION" ]; then
    echo "ray $have already installed in $VENV"
    exit 0
fi

echo "installing ray==$RAY_VERSION numpy psutil into $VENV"
"$VENV/bin/python" -m pip install --quiet "ray==$RAY_VERSION" numpy psutil
"$VENV/bin/python" -c 'import ray; print("ray", ray.__version__, "installed in", ray.__file__)'
