#!/usr/bin/env bash
# Make (once) a virtualenv holding one pinned PyPI requirement: `tests/support/pypi-venv.sh DIR
# REQUIREMENT`. DIR/.complete holds the requirement of a finished install; a half-made DIR, or
# one made for another requirement, is made again. uv-venv.sh and mlflow-venv.sh name the pins.
set -euo pipefail
dir=$1
requirement=$2
if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$requirement" ]; then
  exit 0
fi
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
echo "$requirement" > "$dir/.complete"
