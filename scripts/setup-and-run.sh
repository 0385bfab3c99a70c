#!/usr/bin/env bash
# README command 1: install everything, then build, boot and test with defaults.
# Extra arguments go to `recharge-harness run` (e.g. --suite test_memcontrol).
# Exit code: the harness's (0 passed, 1 a test failed, 2 no verdict).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/recharge-harness run "$@"
