#!/usr/bin/env bash
# The MLflow release the tracking tests run against: `tests/support/mlflow-venv.sh DIR`. Used by
# the tests themselves (tests/cli/support/mlflow.rs) and by .ci/run.
exec bash "$(dirname "$0")/pypi-venv.sh" "$1" "mlflow[auth]==3.17.2"
