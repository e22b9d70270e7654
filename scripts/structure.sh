#!/usr/bin/env bash
# The codebase's shape (issue 27), checked: no import circle between the
# modules of src/ (scripts/structure/modgraph.py reads every `use` and path;
# cycles.py finds the circles) and no function over 120 lines outside tests
# (longfns.py). Prints what it finds; exits 1 when either is there.
set -euo pipefail
cd "$(dirname "$0")/.."
d=scripts/structure
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
python3 "$d/modgraph.py" . --json "$edges" >/dev/null
circles=$(python3 "$d/cycles.py" "$edges" | sed '1d' | grep -v '^\s*$' || true)
long=$(python3 "$d/longfns.py" . 120)
status=0
if [ -n "$circles" ]; then echo "import circles:"; echo "$circles"; status=1; fi
if [ -n "$long" ]; then echo "functions over 120 lines:"; echo "$long"; status=1; fi
[ "$status" = 0 ] && echo "structure: no import circle, no function over 120 lines"
exit $status
