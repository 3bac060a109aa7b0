#!/usr/bin/env bash
# Open a campaign report in headless Chromium, fail on any console message, save report.png.
#
#   scripts/screenshot_report.sh OUT_DIR [WIDTH HEIGHT]
#
# Chromium's --screenshot takes the window, not the page: HEIGHT (default 8000)
# should exceed the page; the blank rows below it are then cut off with Pillow
# (a matplotlib dependency) from the project's .venv, or $PYTHON.
#
# OUT_DIR holds report.html (chaos.campaign.report.render_report writes it). The
# report has no script and no external resource, so any console line at all
# (an error, an uncaught exception, a blocked load) is a defect: Chromium's
# headless log prints every console message at one level, "INFO:CONSOLE", so
# the script fails on all of them rather than guess which are errors. It also
# fails when the page names a resource that is not embedded (src= that is not
# a data: URL), which would break the report once moved. Chromium comes from
# Debian (apt-get install -y chromium).
set -euo pipefail

die() { echo "screenshot_report: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 OUT_DIR [WIDTH HEIGHT]"
out_dir=$(cd "$1" 2>/dev/null && pwd) || die "$1: no such folder"
width=${2:-1400}
height=${3:-8000}
python=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
html="$out_dir/report.html"
png="$out_dir/report.png"
[ -f "$html" ] || die "$html: missing (render the report first)"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || die "chromium not found: install it with 'apt-get install -y chromium' (as root)"

external=$(grep -o -E 'src="[^"]{0,40}' "$html" | grep -v 'src="data:' || true)
[ -z "$external" ] || die "$html names a resource that is not embedded: $external"

profile=$(mktemp -d -t loomchaos-chromium.XXXXXX)
log="$profile/chromium.log"
trap 'rm -rf "$profile"' EXIT

# --no-sandbox: Chromium refuses to run as root with its sandbox, and CI runs as root.
rm -f "$png"
if ! timeout 90 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --no-first-run --user-data-dir="$profile" --enable-logging=stderr --v=0 \
    --window-size="$width,$height" --screenshot="$png" "file://$html" 2>"$log"; then
  tail -n 20 "$log" >&2
  die "chromium failed or did not finish within 90 s"
fi
if grep -q 'CONSOLE' "$log"; then
  grep 'CONSOLE' "$log" >&2
  die "the page wrote to the console (above): it should write nothing"
fi
[ -s "$png" ] || die "chromium wrote no screenshot to $png"
"$python" - "$png" <<'PY' || die "could not trim $png with $python (Pillow)"
import sys
from PIL import Image, ImageChops
path = sys.argv[1]
image = Image.open(path).convert("RGB")
# The page background is white: keep everything down to the last non-white row, plus a margin.
box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
if box is not None:
    image.crop((0, 0, image.width, min(image.height, box[3] + 24))).save(path)
PY
echo "$png"
