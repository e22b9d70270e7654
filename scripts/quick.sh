#!/usr/bin/env bash
# The fast development loop: formatting, clippy, the unit tests and every
# integration test that needs no lab (no Cyrus, no sshd). Debug profile, for
# its incremental builds: 35 s after an edit of the library on 2 cores (the
# release profile the suite uses took 2 min 23 s), about 4 minutes the first
# time. The whole suite is scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all -- --check
# no import circle, no function over 120 lines (python3; skipped without it)
if command -v python3 >/dev/null; then scripts/structure.sh; else echo "structure: skipped (no python3)"; fi
cargo clippy --all-targets -- -D warnings
# the tests that start no lab (tests/README.md lists which do)
nolab=(autopilot_rules cli_shell console_keys console_views failover_script fuzz_parsers
  keymap_files metrics_http option_injection probe_script quarantine_script quote_prop runner_busy)
args=(--lib --bins)
for t in "${nolab[@]}"; do args+=(--test "$t"); done
cargo test "${args[@]}" -- --test-threads=2
