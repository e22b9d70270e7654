#!/usr/bin/env bash
# The integration suite's core scenarios on every Cyrus release the lab
# rehearses (3.6, 3.8, 3.10, 3.12), and on a mixed pair (3.6 master -> 3.10 replica: the upgrade
# direction), each on the real pair: status healthy and replica down, check
# finding each divergence kind, stuck user quarantined and released, doctor,
# failover and fail back under continuous delivery with nothing lost, and
# a hard failover (promote, then reintegrate the crashed master holding
# unreplicated mail, under the easy and the soft UID policy) with nothing lost;
# in a full run also the site profile's tests and replace-replica on it.
#
#   scripts/versions.sh          all of it (about 40 minutes on 2 cores)
#   scripts/versions.sh slice    what CI runs (scripts/test.sh): one test of
#                                each scenario on 3.12 (~2 min)
#
# A release the host has not (Debian 12 has 3.6) runs from a debootstrap root
# cached in /var/tmp/cyrdeck-roots (built on first use: ~1 min and ~0.5 GB
# each; `cyrdeck lab roots` lists them). Prints one line per release.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
mode=${1:-full}
[ "$mode" = slice ] || scripts/setup.sh
bin="${CARGO_TARGET_DIR:-target}/release/cyrdeck"
tests=(--test lab_pair --test check_lab --test stuck_lab --test doctor_lab --test failover_lab --test client_lab --test hard_failover_lab)
filters=()
# the full run includes what CI leaves out for time (#[ignore = "CI time..."])
include_ignored=(--include-ignored)
if [ "$mode" = slice ]; then
  include_ignored=()
  # (replica down: the full run; it costs CI 75 s a release)
  filters=(healthy_pair_is_ok check_reports_exactly_what_was_planted
    unreadable_replica_mailbox_is_detected_quarantined doctor_finds_nothing
    failover_and_back_with_continuous_deliveries promote_then_reintegrate_loses_no_accepted_message
    reintegrate_with_the_soft_uid_policy_keeps_the_uids_the_owner_saw)
fi
# label master-release replica-release
runs=("3.6 3.6 3.6" "3.8 3.8 3.8" "3.10 3.10 3.10" "3.12 3.12 3.12" "3.6->3.10 3.6 3.10")
# the mixed pair's guided upgrade (tests/upgrade_lab.rs) runs at the end of a full run
# CI: the newest release (3.10 and 3.8 in the full run; CI's 45 minutes)
[ "$mode" = slice ] && runs=("3.12 3.12 3.12")
status=0
summary=()
down_labs() {
  for d in /var/tmp/cyrdeck-versions-lab /var/tmp/cyrdeck-failover-lab /var/tmp/cyrdeck-hardfo-lab; do
    [ -d "$d" ] && { "$bin" lab down --dir "$d" >/dev/null 2>&1 || true; }
  done
}
for r in "${runs[@]}"; do
  read -r label m rep <<<"$r"
  for rel in "$m" "$rep"; do "$bin" lab roots --build "$rel" >/dev/null; done
  log=$(mktemp)
  start=$(date +%s)
  rc=0
  CYRDECK_TEST_LAB=/var/tmp/cyrdeck-versions-lab CYRDECK_TEST_MASTER_CYRUS=$m CYRDECK_TEST_REPLICA_CYRUS=$rep \
    cargo test --release --no-fail-fast "${tests[@]}" -- --test-threads=2 "${include_ignored[@]}" "${filters[@]}" 2>&1 | tee "$log" || rc=$?
  took=$(( $(date +%s) - start ))
  down_labs
  passed=$(grep -E '^test result: ' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
  failed=$(grep -E '^test result: ' "$log" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
  rm -f "$log"
  [ "$rc" = 0 ] || status=1
  summary+=("cyrus $label: $passed passed, failures: $failed, ${took}s")
done
if [ "$mode" != slice ]; then
  # the guided upgrade on a mixed pair (3.6 master, 3.10 replica; its own lab)
  start=$(date +%s); rc=0
  cargo test --release --test upgrade_lab -- --ignored --test-threads=1 2>&1 | tee /tmp/cyrdeck-upgrade.log || rc=$?
  "$bin" lab down --dir /var/tmp/cyrdeck-upgrade-lab >/dev/null 2>&1 || true
  [ "$rc" = 0 ] || status=1
  summary+=("upgrade-via-failover 3.6->3.10: $(grep -Eo '[0-9]+ passed; [0-9]+ failed' /tmp/cyrdeck-upgrade.log | tail -1), $(( $(date +%s) - start ))s")
  # the site profile (domains, altnamespace, two partitions, archive
  # partitions, shared folders) on each newer release: every site test and
  # replace-replica on it (CI runs them on the host's 3.6)
  for rel in 3.8 3.10 3.12; do
    start=$(date +%s); rc=0
    CYRDECK_TEST_CYRUS=$rel cargo test --release --no-fail-fast --test site_lab --test site_replace_lab -- --test-threads=1 --include-ignored \
      2>&1 | tee /tmp/cyrdeck-site-$rel.log || rc=$?
    for d in /var/tmp/cyrdeck-site-lab /var/tmp/cyrdeck-site-replace-lab; do "$bin" lab down --dir "$d" >/dev/null 2>&1 || true; done
    [ "$rc" = 0 ] || status=1
    summary+=("site profile, cyrus $rel: $(grep -E '^test result' /tmp/cyrdeck-site-$rel.log | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}') passed, rc $rc, $(( $(date +%s) - start ))s")
  done
fi
"$bin" lab roots
printf '%s\n' "${summary[@]}"
exit $status
