#!/usr/bin/env bash
# The Ray release the Ray backend's tests run a head of: `tests/support/ray-venv.sh DIR`. Used by
# the tests themselves (tests/cli/support/ray.rs) and by .ci/run.
exec bash "$(dirname "$0")/pypi-venv.sh" "$1" "ray[default]==2.60.0"
