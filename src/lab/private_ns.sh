#!/bin/sh
# cyrdeck lab: run a lab process (Cyrus master, sshd, journald) in a mount
# namespace of its own, where /dev/log is the lab's, never the host's.
#
#   unshare --mount --propagation private sh private_ns.sh TAG NSDIR LOGSOCK JOURNAL ROOT LABDIR -- CMD ARGS...
#
# glibc's syslog() always writes to /dev/log: the only way to give a Cyrus
# instance its own receiver without touching the host's socket is a private
# /dev. A fresh tmpfs gets every host /dev entry bind-mounted (device nodes,
# pts, shm) except `log`, which becomes a symlink to LOGSOCK; then it is
# moved over /dev. Every mount happens in this namespace only: the host,
# its /dev/log and its syslog daemon never see it, and the namespace ends
# with its last process. TAG names the private /dev's tmpfs: it shows in
# /proc/PID/mountinfo of every process in the namespace (ssh sessions and
# what they started too), which is how `lab down` finds them all.
# CYRDECK_PIDFILE (optional): write this process's pid there (for a
# daemon that does not write one, started through `setsid -f`).
# NSDIR/etc/FILE (passwd, group, sudoers) is bound over /etc/FILE.
# JOURNAL=journal: this host logs to a private systemd-journald instead:
# the journal's sockets and files are lab
# directories (NSDIR/journal-sock, NSDIR/journal-data) bound where journald
# and journalctl expect them; the host's /var/log/journal is covered too.
# ROOT (or -): run CMD chrooted in this root filesystem (another Cyrus
# release, lab/roots.rs); /proc, the private /dev and /run and LABDIR (at
# the same path, so every config path means the same inside) are mounted
# into it, in this namespace only.
set -eu
tag=$1 nsdir=$2 logsock=$3 journal=$4 root=$5 labdir=$6
shift 6
[ "${1:-}" = -- ] && shift
[ "$root" = - ] && root=
if [ -n "$root" ] && [ "$journal" = journal ]; then
  echo "private_ns.sh: a journal host runs the host's own release" >&2
  exit 2
fi
# a private /run too: sshd's privilege separation directory is made here,
# not on the host
mount -t tmpfs -o mode=0755,nosuid,nodev "$tag-run" "$root/run"
mkdir -p "$root/run/sshd"
if [ -n "$root" ]; then
  mount -t proc proc "$root/proc"
  mkdir -p "$root$labdir"
  mount --bind "$labdir" "$root$labdir"
fi
if [ "$journal" = journal ]; then
  mkdir -p "$nsdir/journal-sock" "$nsdir/journal-data"
  mkdir -p /run/systemd/journal /run/log/journal
  mount --bind "$nsdir/journal-sock" /run/systemd/journal
  mount --bind "$nsdir/journal-data" /run/log/journal
  if [ -d /var/log/journal ]; then mount --bind "$nsdir/journal-data" /var/log/journal; fi
fi
# the lab's least-privilege accounts and their sudo rules (lab/accounts.rs):
# files in NSDIR/etc cover the host's /etc entries of the same name, here only
if [ -d "$nsdir/etc" ]; then
  for f in "$nsdir"/etc/*; do
    [ -f "$f" ] && [ -f "$root/etc/${f##*/}" ] && mount --bind "$f" "$root/etc/${f##*/}"
  done
fi
dev=$nsdir/dev
mkdir -p "$dev"
mount -t tmpfs -o mode=0755,nosuid "$tag" "$dev"
for e in /dev/* /dev/.[!.]*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  n=${e##*/}
  [ "$n" = log ] && continue
  if [ -L "$e" ]; then
    cp -P "$e" "$dev/$n"
  elif [ -d "$e" ]; then
    mkdir "$dev/$n" && mount --rbind "$e" "$dev/$n"
  else
    : >"$dev/$n" && mount --bind "$e" "$dev/$n"
  fi
done
ln -s "$logsock" "$dev/log"
mount --move "$dev" "$root/dev"
if [ -n "${CYRDECK_PIDFILE:-}" ]; then echo $$ >"$CYRDECK_PIDFILE"; fi
if [ -n "$root" ]; then exec chroot "$root" "$@"; fi
exec "$@"
