#!/usr/bin/env bash
# Make (once) a virtualenv holding uv from PyPI, for the environment tests on a machine without
# uv: `tests/support/uv-venv.sh DIR`. DIR/.complete marks a finished install; a half-made DIR
# is made again. Used by the tests themselves (tests/cli/support/uv.rs).
set -euo pipefail
dir=$1
version=0.13.9
if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$version" ]; then
  exit 0
fi
rm -rf "$dir"
python3 -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$version"
echo "$version" > "$dir/.complete"
