#!/usr/bin/env bash
# The long fuzz run (issue 15). CI runs the same targets with 256 cases each
# as part of the test suite; this runs CASES (default 200,000) per parser
# target of tests/fuzz_parsers.rs, and the quoting property through a real
# shell (tests/quote_prop.rs) with QUOTE_CASES (default 20,000: each case
# starts two processes). Prints executions and time per target.
#   scripts/fuzz.sh [CASES]      (QUOTE_CASES=N to change the second)
# A failure prints proptest's minimal failing input; fix it with a
# regression test beside the parser.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cases=${1:-200000}
quote_cases=${QUOTE_CASES:-20000}
cargo test --release --no-run --test fuzz_parsers --test quote_prop 2>/dev/null
started=$(date +%s)
status=0
echo "parsers: $cases cases per target"
CYRDECK_FUZZ_CASES=$cases cargo test --release --test fuzz_parsers -- --nocapture --test-threads=1 2>&1 \
  | grep -oE 'fuzz [^:]+: [0-9]+ executions in [0-9.]+ s|test result.*|minimal failing input.*|panicked.*' || status=1
echo "quoting through /bin/sh: $quote_cases cases"
q0=$(date +%s.%N)
CYRDECK_QUOTE_CASES=$quote_cases cargo test --release --test quote_prop 2>&1 \
  | grep -E '^test |^test result|minimal failing input|panicked' || status=1
awk -v a="$q0" -v b="$(date +%s.%N)" 'BEGIN { printf "quote_prop: %.1f s\n", b - a }'
echo "total: $(( $(date +%s) - started )) s"
exit $status
