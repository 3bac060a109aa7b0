#!/usr/bin/env bash
# The test command CI runs (through `make test`): set-up, fast tier, main job, chaos tier.
# Prints the wall time of each phase so the 90-minute budget stays visible
# (README: set-up <= 15 min, fast tier <= 2 min, chaos tier <= 50 min).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/goenv.sh
source scripts/goenv.sh  # the module mirror beside this checkout, where there is one

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
BIN=$VENV/bin
declare -a SUMMARY=()

phase() {  # phase NAME COMMAND... ; runs it, records its time, stops the script on failure
  local name=$1; shift
  local start=$SECONDS
  echo "=== phase: $name"
  "$@"
  local rc=$?
  local took=$((SECONDS - start))
  SUMMARY+=("$(printf '%-12s %5ss  rc=%s' "$name" "$took" "$rc")")
  # pytest's 5 ("no tests collected") stays a failure: a tier that ran nothing proved nothing.
  if [ "$rc" -ne 0 ]; then
    report; echo "phase $name failed (rc=$rc)"; exit "$rc"
  fi
}

report() {
  echo "=== phase times"
  printf '%s\n' "${SUMMARY[@]}"
  echo "=== what each tier counted (xfail = a known finding, docs/findings/)"
  for xml in reports/junit-fast.xml reports/junit-chaos.xml; do
    [ -f "$xml" ] && "$BIN/python" scripts/junit_counts.py "$xml"
  done
  return 0
}

install() {
  if [ ! -x "$BIN/loomchaos" ] || [ pyproject.toml -nt "$BIN/loomchaos" ]; then
    "$PYTHON" -m venv "$VENV" && "$BIN/pip" install --quiet --upgrade pip &&
      "$BIN/pip" install --quiet -e '.[dev]' && touch "$BIN/loomchaos"
  fi
}

rm -f reports/junit-fast.xml reports/junit-chaos.xml  # counts below are this run's only
phase install install
phase setup "$BIN/loomchaos" setup
phase lint-types bash -c "$BIN/ruff check chaos tests scripts conftest.py && $BIN/mypy chaos"
phase fast-tier "$BIN/pytest" --durations=10 --junitxml=reports/junit-fast.xml
# The README's main job at its smallest size: a 12-run burst campaign end to end, with report.
phase main-job "$BIN/loomchaos" run --smallest
phase chaos-tier "$BIN/pytest" -m 'chaos and not slow and not soak' --durations=25 \
  --junitxml=reports/junit-chaos.xml
report
