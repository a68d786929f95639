#!/usr/bin/env bash
# Refresh the committed example report (docs/example-report/) from the main job's output. The main job
# (`hwsim run && hwsim sweep`) writes reports/default/, which git ignores; this copies the page, its
# figures, results.csv and the resolved sweep file, so every link of the page works in a clone.
set -euo pipefail
cd "$(dirname "$0")/.."
src=reports/default
dst=docs/example-report
test -f "$src/report.html" || { echo "no $src/report.html: run hwsim sweep first" >&2; exit 2; }
rm -rf "$dst"
mkdir -p "$dst"
cp -r "$src/report.html" "$src/results.csv" "$src/sweep.yaml" "$src/figures" "$dst/"
echo "wrote $dst ($(du -sh "$dst" | cut -f1))"
