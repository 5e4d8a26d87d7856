#!/usr/bin/env bash
# Regenerates the hashed lock files from the requirement lists (pip-tools' pip-compile):
#   requirements.lock        the program's runtime (requirements.txt)
#   requirements-dev.lock    tests, lint and tools (requirements-dev.txt, which includes the runtime)
#   requirements-build.lock  build backends of the sdist-only packages (requirements-build.txt)
#   policy/requirements.lock the policy pack (policy/requirements.txt)
# Every install (scripts/test.sh, the workflows) uses `pip install --require-hashes -r <lock>`.
# Run it after changing a requirements*.txt; `--upgrade` moves every pin to the newest release.
# Usage: scripts/lock.sh [pip-compile flags, e.g. --upgrade or --upgrade-package X]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-venv/bin/python}
compile() {
  local input=$1 output=$2
  shift 2
  # --allow-unsafe: pip, setuptools and wheel are pinned and hashed like everything else.
  CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$python" -m piptools compile --quiet --generate-hashes --allow-unsafe \
    --strip-extras --no-emit-index-url --no-emit-find-links --output-file "$output" "$input" "$@"
}
compile requirements-dev.txt requirements-dev.lock "$@"
# The others take their versions from the dev lock, so what the tests ran is what deploys run.
compile requirements.txt requirements.lock --constraint requirements-dev.lock "$@"
compile policy/requirements.txt policy/requirements.lock --constraint requirements-dev.lock "$@"
compile requirements-build.txt requirements-build.lock "$@"
# A new sdist-only package whose backend is missing from requirements-build.txt fails the install in
# scripts/test.sh (built with --no-build-isolation): add its backend there and run this again.

