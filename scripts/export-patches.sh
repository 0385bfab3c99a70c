#!/bin/bash
# Export a kernel branch as patches/: format-patch + cover letter + series file.
#
# Usage: scripts/export-patches.sh [GIT_DIR [BASE [BRANCH]]]
#   GIT_DIR  kernel tree holding the series branch (default: the harness cache's dev tree)
#   BASE     base tag (default v6.12.117-deb), BRANCH (default recharge)
# The cover letter's subject and blurb come from docs/cover-letter.txt (first paragraph =
# subject). patches/ is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
GIT_DIR=${1:-${RECHARGE_HARNESS_CACHE:-$HOME/.cache/recharge-harness}/dev}
BASE=${2:-v6.12.117-deb}
BRANCH=${3:-recharge}
OUT=patches
rm -rf "$OUT"
mkdir -p "$OUT"
git -C "$GIT_DIR" format-patch -q --cover-letter --base="$BASE" -o "$PWD/$OUT" "$BASE..$BRANCH"
python3 - "$OUT"/0000-*.patch docs/cover-letter.txt <<'PY'
import sys
path, cover = sys.argv[1], sys.argv[2]
text = open(path).read()
subject, _, blurb = open(cover).read().partition("\n\n")
text = text.replace("*** SUBJECT HERE ***", subject.strip())
text = text.replace("*** BLURB HERE ***", blurb.rstrip("\n"))
open(path, "w").write(text)
PY
(cd "$OUT" && ls [0-9]*.patch | grep -v '^0000-') > "$OUT/series"
cat "$OUT/series"
