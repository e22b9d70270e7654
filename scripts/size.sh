#!/usr/bin/env bash
# The real-site size runs (issue 24) on a pair of 50,000 mailboxes
# (10,000 users x INBOX + 4 folders, 2 messages each; CYRDECK_SIZE_USERS
# overrides): for each way the master's host can be gone (refused,
# black-holed, a name that no longer resolves), promote under delivery, the
# new master takes mail, reintegrate (soft, then easy policy) copies
# everything back; every accepted message on both hosts, check clean; each
# phase's time printed next to `check`'s. CI runs the same cases on 6,000
# mailboxes inside scripts/test.sh. About 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
status=0
CYRDECK_SIZE_USERS=${CYRDECK_SIZE_USERS:-10000} cargo test --release --test size_lab -- \
  --test-threads=1 --include-ignored --nocapture 2>&1 | tee /tmp/cyrdeck-size.log || status=$?
"${CARGO_TARGET_DIR:-target}/release/cyrdeck" lab down --dir /var/tmp/cyrdeck-size-lab 2>/dev/null || true
grep -E '^\[|^seed|survey:|took|writes unavailable|^test result' /tmp/cyrdeck-size.log || true
exit $status
