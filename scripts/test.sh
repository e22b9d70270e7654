#!/usr/bin/env bash
# The whole test suite: installs packages, builds once, starts the real lab
# (two Cyrus 3.6 instances + one sshd per host + rsyslog on loopback) inside
# the tests, runs unit and integration tests, then the core scenarios on
# Cyrus 3.12 (scripts/versions.sh slice), then stops every lab.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
# the remote scripts: POSIX sh (warnings and errors), the perl one compiles
shellcheck -s sh -S warning src/cyrus/*.sh src/ops/*.sh src/ops/failover/*.sh src/lab/*.sh
shellcheck -s bash -S warning src/ops/failover/*.bash
perl -c src/cyrus/inventory.pl
lab=${CYRDECK_TEST_LAB:-/var/tmp/cyrdeck-test-lab}
status=0
out=$(mktemp)
# unit tests, then the integration tests against the real lab
# within a budget (CYRDECK_TEST_BUDGET seconds, default 55 min): a wedged lab
# then ends the run with its output and its labs stopped, inside CI's limit
budget=${CYRDECK_TEST_BUDGET:-3300}
# the newest release's root for the versions slice, built meanwhile
# (debootstrap: network and disk, ~1 min; cached in /var/tmp/cyrdeck-roots)
roots_log=$(mktemp)
"${CARGO_TARGET_DIR:-target}/release/cyrdeck" lab roots --build 3.12 >"$roots_log" 2>&1 &
roots_pid=$!
timeout -k 30 "$budget" cargo test --release --no-fail-fast --lib --bins --tests -- --test-threads=2 2>&1 | tee "$out" || status=$?
[ "$status" = 124 ] && echo "the tests ran past their budget of ${budget}s and were stopped"
# the core scenarios on Cyrus 3.12 (a debootstrap root, cached): one test of
# each (scripts/versions.sh runs all, 3.8, 3.10 and a mixed pair too)
for d in /var/tmp/cyrdeck-failover-lab /var/tmp/cyrdeck-hardfo-lab "$lab"; do
  [ -d "$d" ] && { "${CARGO_TARGET_DIR:-target}/release/cyrdeck" lab down --dir "$d" >/dev/null || status=1; }
done
wait "$roots_pid" || { echo "the 3.12 root was not built:"; cat "$roots_log"; }
rm -f "$roots_log"
scripts/versions.sh slice 2>&1 | tee -a "$out" || status=$?
# every lab the tests started: nothing of theirs may outlive the suite
for d in /var/tmp/cyrdeck-failover-lab /var/tmp/cyrdeck-matrix-lab /var/tmp/cyrdeck-logsrc-lab /var/tmp/cyrdeck-hardfo-lab /var/tmp/cyrdeck-upgrade-lab /var/tmp/cyrdeck-versions-lab /var/tmp/cyrdeck-oncall-lab /var/tmp/cyrdeck-fleet-lab /var/tmp/cyrdeck-replicas-lab /var/tmp/cyrdeck-replace-lab /var/tmp/cyrdeck-size-lab /var/tmp/cyrdeck-site-lab /var/tmp/cyrdeck-site-replace-lab "$lab"; do
  [ -d "$d" ] && { "${CARGO_TARGET_DIR:-target}/release/cyrdeck" lab down --dir "$d" || status=1; }
done
left=$(pgrep -af '/var/tmp/cyrdeck-(test|failover|matrix|logsrc|iso|hardfo|upgrade|versions|oncall|fleet|replicas|replace|size|site|site-replace)-lab' || true)
if [ -n "$left" ]; then
  echo "processes of the test labs still running:"; echo "$left"; status=1
fi
passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$out" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -E '^test result: ' "$out" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
rm -f "$out"
echo "total: $passed passed, $failed failed"
exit $status
