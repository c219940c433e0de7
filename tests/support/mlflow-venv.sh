#!/usr/bin/env bash
# Make (once) the virtualenv with the MLflow release the tracking tests run against:
# `tests/support/mlflow-venv.sh DIR`. DIR/.complete marks a finished install; a half-made
# DIR is made again. Used by the tests themselves and by .ci/run.
set -euo pipefail
dir=$1
version=3.17.2
if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$version" ]; then
  exit 0
fi
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "mlflow[auth]==$version"
echo "$version" > "$dir/.complete"
