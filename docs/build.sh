#!/usr/bin/env bash
# Build the documentation: HTML in docs/_build/html, warnings as errors, offline.
#   docs/build.sh            # run the gallery examples too (a few minutes)
#   docs/build.sh --noplot   # pages only, examples not executed
# PYTHON selects the interpreter (default: .venv/bin/python of the repository).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-../.venv/bin/python}"
if [[ "${1:-}" == "--noplot" ]]; then
  export SKAR_DOCS_PLOT_GALLERY=False
fi
# Generated pages are rebuilt from scratch so that renamed or removed objects leave nothing
# stale behind; sphinx-gallery's own cache (auto_examples) is kept between builds.
rm -rf generated
exec "$PYTHON" -m sphinx -b html -W --keep-going . _build/html
