#!/usr/bin/env bash
# uv for the environment tests on a machine without it: `tests/support/uv-venv.sh DIR`. Used by
# the tests themselves (tests/cli/support/uv.rs) and by .ci/run.
exec bash "$(dirname "$0")/pypi-venv.sh" "$1" "uv==0.13.9"
