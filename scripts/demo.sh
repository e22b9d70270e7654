#!/usr/bin/env bash
# Run the console on a local rehearsal pair: installs packages, builds,
# starts and seeds the lab, then opens the console on it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
dir=${CYRDECK_LAB:-/var/tmp/cyrdeck-lab}
./target/release/cyrdeck lab up --dir "$dir"
./target/release/cyrdeck lab seed --dir "$dir" >/dev/null
echo "lab ready; config: $dir/cyrdeck.toml (stop it with: ./target/release/cyrdeck lab down --dir $dir)"
exec ./target/release/cyrdeck --config "$dir/cyrdeck.toml" "$@"
