#!/usr/bin/env bash
# Check every planted defect: it applies to the pinned loomcycle source with
# `patch -p1`, and the patched packages pass `go vet` and their own `go test`.
# A planted defect that breaks its package's tests is too obvious to count.
#
#   usage: scripts/check_planted.sh [PATCH_DIR] [PATCH ...]
#   (run after `source scripts/goenv.sh`; default PATCH_DIR planted/loomcycle-v1.59.0)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
patch_dir="${1:-$here/planted/loomcycle-v1.59.0}"
shift || true
version="$(basename "$patch_dir")"; version="${version#loomcycle-}"
cache="${LOOMCHAOS_CACHE:-$HOME/.cache/loomchaos}"
export GOPATH="$cache/go/path" GOCACHE="$cache/go/build-cache" CGO_ENABLED=0
src="$GOPATH/pkg/mod/github.com/denn-gubsky/loomcycle@$version"
[ -d "$src" ] || { echo "check_planted: no pinned source at $src (run loomchaos setup)" >&2; exit 2; }

work="$(mktemp -d -t loomchaos-planted.XXXXXX)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

if [ "$#" -gt 0 ]; then patches=("$@"); else patches=("$patch_dir"/*.patch); fi
failed=0
for p in "${patches[@]}"; do
  name="$(basename "$p" .patch)"
  tree="$work/$name"
  cp -r "$src" "$tree" && chmod -R u+w "$tree"
  if ! patch -p1 -s -d "$tree" <"$p"; then
    echo "FAIL $name: does not apply"; failed=1; continue
  fi
  # The packages a patch touches: the folders of its "+++ b/..." files.
  pkgs=$(sed -n 's|^+++ b/\(.*\)/[^/]*$|./\1|p' "$p" | sort -u)
  # shellcheck disable=SC2086
  if (cd "$tree" && go vet $pkgs && go test -count=1 $pkgs) >"$work/$name.log" 2>&1; then
    echo "ok   $name ($(echo $pkgs | tr '\n' ' '))"
  else
    echo "FAIL $name:"; grep -E -- '--- FAIL|^FAIL|panic:|vet:|\.go:[0-9]+:[0-9]+: ' "$work/$name.log" | head -n 30
    failed=1
  fi
  rm -rf "$tree"
done
exit "$failed"
