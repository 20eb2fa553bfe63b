#!/usr/bin/env bash
# The whole suite (`make test`), in two parts:
#   1. everything but tests/chaos, on TEST_WORKERS pytest-xdist workers (default 2), a test
#      file to one worker (its module fixtures are set up once, its tests run in order): each
#      worker has its own session stack (database, queue prefix, ports, SMTP and DNS
#      servers), and most tests wait on processes rather than burn CPU;
#   2. tests/chaos alone: it stops and starts this machine's PostgreSQL, RabbitMQ and
#      Redis, which every other test uses.
# With arguments (`make test PYTEST_ARGS=...`), pytest runs just those, in one process.
# pytest exits 5 when it collects no test at all ("no tests ran"): not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=.venv/bin/pytest

run() {
  "$PYTEST" "$@"
  local code=$?
  [ "$code" -eq 0 ] || [ "$code" -eq 5 ] || exit "$code"
}

if [ "$#" -gt 0 ]; then
  run "$@"
  exit 0
fi
run -n "${TEST_WORKERS:-2}" --dist loadfile --ignore=tests/chaos
run tests/chaos
