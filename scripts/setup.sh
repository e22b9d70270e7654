#!/usr/bin/env bash
# Install what cyrdeck's lab and tests need on Debian 12 (idempotent), then build.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
PKGS="cyrus-imapd cyrus-admin cyrus-clients cyrus-replication openssh-server openssh-client sasl2-bin db-util rsyslog systemd bsdutils iproute2 procps coreutils util-linux tmux shellcheck sudo debootstrap"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  # policy-rc.d keeps the packaged Cyrus from starting; the lab runs its own instances
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
cargo build --release --all-targets
