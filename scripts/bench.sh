#!/usr/bin/env bash
# Benchmarks that print figures (not timed tests): refresh cost vs queue size.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo bench --bench render
cargo bench --bench refresh
cargo bench --bench check
cargo bench --bench failover
cargo bench --bench fleet
