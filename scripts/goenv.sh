# Sourced by scripts/test.sh and the Makefile: point Go at the module mirror in
# ../shared/goproxy when this checkout sits beside one (this workplace and its
# CI). The mirror serves loomcycle and gbash, which the machine's module proxy
# refuses; everything else still comes from the usual proxy, listed after it.
# Elsewhere nothing is exported and `go install` works as it always does.
# The Python package itself reads only the standard GOPROXY / GONOSUMDB.
_loomchaos_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -d "$_loomchaos_root/../shared/goproxy" ] && command -v go >/dev/null 2>&1; then
  _mirror=$(cd "$_loomchaos_root/../shared/goproxy" && pwd)
  case "${GOPROXY:-}" in
    *"file://$_mirror"*) ;;
    *) GOPROXY="file://$_mirror,${GOPROXY:-$(go env GOPROXY)}"; export GOPROXY ;;
  esac
  # The checksum database does not know these two module versions here.
  case "${GONOSUMDB:-}" in
    *denn-gubsky/loomcycle*) ;;
    *) GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/denn-gubsky/loomcycle,github.com/ewhauser/gbash"
       export GONOSUMDB ;;
  esac
fi
unset _loomchaos_root _mirror
