#!/usr/bin/env bash
# Mutation testing of the invariant checkers (chaos/checks/) with mutmut.
#
#   bash scripts/mutate_checks.sh                 # the checkers' own tests ([tool.mutmut])
#   bash scripts/mutate_checks.sh --fast-tier     # every mutant against the whole fast tier
#   bash scripts/mutate_checks.sh --keep DIR      # also copy mutmut's results folder to DIR
#
# mutmut works in a `mutants/` folder beside pyproject.toml.  So that nothing of it
# touches the checkout (other work goes on there), the run happens in a copy of the
# sources in a temporary folder, removed on every exit path.  The configuration is the
# `[tool.mutmut]` table of pyproject.toml; docs/mutation/checks.md has the last scores.
# Not in CI: about 2750 mutants take 7-8 minutes on two busy cores (`--fast-tier`
# much longer).  The run is niced: it is CPU-heavy and other work shares the machine.
set -euo pipefail

usage() {
  echo "usage: $0 [--fast-tier] [--keep DIR] [--max-children N]" >&2
  exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
mutmut="$root/.venv/bin/mutmut"
python="$root/.venv/bin/python"
whole_fast_tier=0
keep=""
children=2
while (($#)); do
  case "$1" in
    --fast-tier) whole_fast_tier=1 ;;
    --keep) keep=$(realpath -m "${2:?--keep needs a folder}"); shift ;;
    --max-children) children=${2:?--max-children needs a number}; shift ;;
    -h | --help) usage ;;
    *) echo "$0: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
if [[ ! -x "$mutmut" ]]; then
  echo "$0: $mutmut not found: run \`.venv/bin/pip install -e '.[dev]'\` first" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/loomchaos-mutate-checks.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The checkout as git sees it (tracked and new files, nothing ignored: no .venv, no caches).
git -C "$root" ls-files -z --cached --others --exclude-standard |
  tar -C "$root" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$work" -xf -
if ((whole_fast_tier)); then
  # Same mutants, judged by everything `pytest` runs (addopts deselects the chaos tier).
  # Some fast tests read the checkout (docs/findings, scripts/): mutmut must copy it all
  # into its folder, beside the mutated package.
  "$python" - "$work" <<'EOF'
import json
import re
import sys
from pathlib import Path

work = Path(sys.argv[1])
path = work / "pyproject.toml"
text = path.read_text(encoding="utf-8")
text, n = re.subn(
    r"pytest_add_cli_args_test_selection = \[[^\]]*\]",
    'pytest_add_cli_args_test_selection = ["tests"]',
    text,
)
everything = sorted(p.name for p in work.iterdir() if p.name != "chaos")
text, m = re.subn(r"also_copy = \[[^\]]*\]", f"also_copy = {json.dumps(everything)}", text)
if (n, m) != (1, 1):
    sys.exit("pyproject.toml: [tool.mutmut] needs pytest_add_cli_args_test_selection and also_copy")
path.write_text(text, encoding="utf-8")
EOF
  # And some run the checkout's own .venv/bin/python (a link, never a copy).
  mkdir -p "$work/mutants"
  ln -s "$root/.venv" "$work/mutants/.venv"
fi

cd "$work"
start=$(date +%s)
# mutmut's exit code is not the score; the score is computed below from its statistics.
nice -n 19 "$mutmut" run --max-children "$children" >"$work/run.log" 2>&1 || {
  tail -c 2000 "$work/run.log" >&2
  echo "$0: mutmut run failed (log above)" >&2
  exit 1
}
elapsed=$(($(date +%s) - start))
"$mutmut" export-cicd-stats >/dev/null
"$mutmut" results >"$work/survivors.txt" 2>&1 || true
"$python" - "$work/mutants/mutmut-cicd-stats.json" "$elapsed" <<'EOF'
import json
import sys

stats = json.load(open(sys.argv[1], encoding="utf-8"))
# A mutant no test reaches ("no_tests") counts as a survivor; "skipped" ones were never made.
judged = stats["total"] - stats["skipped"]
caught = stats["killed"] + stats["timeout"]
print("mutants:", ", ".join(f"{k} {v}" for k, v in stats.items()))
print(f"score: {caught}/{judged} killed = {100.0 * caught / max(judged, 1):.1f}% "
      f"({sys.argv[2]} s)")
EOF
echo "not killed:"
grep -v ': killed$' "$work/survivors.txt" || echo "  (none)"
if [[ -n "$keep" ]]; then
  # The diff of every mutant not killed, for the write-up of each one (in one process:
  # `mutmut show` takes a second per mutant).
  "$python" - >"$work/survivor-diffs.txt" <<'EOF'
import glob
import json
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

for meta in sorted(glob.glob("mutants/chaos/checks/*.py.meta")):
    source = Path(meta.removeprefix("mutants/").removesuffix(".meta"))
    codes = json.loads(Path(meta).read_text(encoding="utf-8"))["exit_code_by_key"]
    for name, code in codes.items():
        status = status_by_exit_code[code]
        if status not in ("killed", "timeout"):
            print(f"=== {name}: {status}")
            print(get_diff_for_mutant(name, path=source))
EOF
  mkdir -p "$keep"
  cp -r "$work/mutants" "$work/run.log" "$work/survivors.txt" "$work/survivor-diffs.txt" "$keep/"
fi
