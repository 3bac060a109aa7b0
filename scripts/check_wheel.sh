#!/usr/bin/env bash
# Build the wheel, install it into a clean venv, and use it from a folder that is not the
# checkout: `loomchaos setup`, the main job at its smallest size (`loomchaos run --smallest`,
# a real chaos campaign: cluster, burst, every checker, exit code), and a user's own chaos
# test through the installed pytest plugin (a copy of tests/chaos/test_smoke.py, which
# imports nothing but the installed `chaos` package).
#
#   bash scripts/check_wheel.sh [WORK_DIR]     (default: a new folder under /tmp)
#
# Needs Docker (started by `loomchaos setup` if absent) and the package index for the
# wheel's dependencies. Prints the time of every phase. LOOMCHAOS_DOCKER_LOCK=FILE takes
# `flock FILE` once, before the first Docker phase, and holds it to the end (for machines
# whose engine is shared; the wait is timed on its own); unset, no lock is taken (a
# pytest run that calls this script already holds it).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d -t loomchaos-wheel.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
python=${PYTHON:-python3}

die() { echo "check_wheel: $*" >&2; exit 1; }
now() { date +%s%N; }
took() {
  local tenths=$((($(now) - $2) / 100000000))
  printf '%s %d.%ds\n' "$1" $((tenths / 10)) $((tenths % 10))
}
docker_lock() {
  [ -n "${LOOMCHAOS_DOCKER_LOCK:-}" ] || return 0
  local t
  t=$(now)
  exec 9>"$LOOMCHAOS_DOCKER_LOCK"
  flock 9
  took "waiting for the Docker lock:" "$t"
}

# The module mirror of this workplace, where there is one (elsewhere it does nothing).
# shellcheck source=/dev/null
source "$here/scripts/goenv.sh"

# 1. Build from a copy of the working tree (tracked and new files, not ignored ones), so
#    the checkout gets no build/ or egg-info, and the wheel holds what a clone would.
t=$(now)
rm -rf "$work/src" "$work/dist" "$work/venv"
mkdir -p "$work/src" "$work/dist"
(cd "$here" && git ls-files -co --exclude-standard -z \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -xf - -C "$work/src"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --upgrade pip
"$work/venv/bin/pip" wheel --quiet --no-deps -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/loomchaos-*.whl)
took "build:" "$t"

# What the installed package needs besides its modules: image recipes, the nginx
# template, the findings' write-ups, the console script and the two pytest plugins.
listing=$(unzip -l "$wheel")
for needed in chaos/assets/images/postgres/Dockerfile chaos/assets/images/postgres/entrypoint.sh \
  chaos/assets/images/nginx/Dockerfile chaos/assets/images/toxiproxy/Dockerfile \
  chaos/assets/images/loomcycle/Dockerfile chaos/cluster/nginx.conf.template chaos/py.typed \
  share/loomchaos/docs/findings/LC-001.md; do
  grep -q -- "$needed" <<<"$listing" || die "the wheel lacks $needed"
done
entry_points=$(unzip -p "$wheel" 'loomchaos-*.dist-info/entry_points.txt')
for needed in "loomchaos = chaos.cli:main" "loomchaos = chaos.plugin" \
  "loomchaos-loomcycle = chaos.sut.loomcycle.fixtures"; do
  grep -qF -- "$needed" <<<"$entry_points" || die "the wheel lacks the entry point '$needed'"
done

# 2. Install into the clean venv (dependencies from the package index).
t=$(now)
"$work/venv/bin/pip" install --quiet "$wheel"
took "install:" "$t"

# 3. From a folder that is not the checkout: the installed package, nothing else.
run="$work/run"
rm -rf "$run"
mkdir -p "$run"
cd "$run"
where=$("$work/venv/bin/python" -c 'import chaos; print(chaos.__file__)')
case "$where" in
  "$work/venv/"*) ;;
  *) die "import chaos found $where, not the installed package" ;;
esac
"$work/venv/bin/python" - <<'PY' || die "the installed package does not find its findings"
from chaos.campaign.classify import findings_root, shipped_findings_root
from chaos.findings import load_findings
root = shipped_findings_root()
assert root is not None and root == findings_root() and load_findings(root), root
PY

docker_lock
t=$(now)
"$work/venv/bin/loomchaos" setup
took "setup:" "$t"

t=$(now)
"$work/venv/bin/loomchaos" run --smallest --seed 11 --out "$run/report" \
  || die "loomchaos run --smallest failed (above)"
[ -s "$run/report/report.html" ] || die "the campaign wrote no report.html"
took "run --smallest:" "$t"

t=$(now)
mkdir -p "$run/tests"
cp "$here/tests/chaos/test_smoke.py" "$run/tests/"
"$work/venv/bin/pytest" -m chaos -q -p no:cacheprovider "$run/tests" \
  || die "the smoke test through the installed plugin failed (above)"
took "smoke test:" "$t"
echo "check_wheel: ok ($wheel)"
