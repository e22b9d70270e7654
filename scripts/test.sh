#!/usr/bin/env bash
# The whole test suite: installs packages, builds once, starts the real lab
# (two Cyrus 3.6 instances + one sshd per host + rsyslog on loopback) inside
# the tests, runs unit and integration tests, then stops the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
lab=${CYRDECK_TEST_LAB:-/var/tmp/cyrdeck-test-lab}
status=0
cargo test --release -- --test-threads=2 || status=$?
./target/release/cyrdeck lab down --dir "$lab" || true
exit $status
