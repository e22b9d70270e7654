# cyrdeck heartbeat: run on the master as
#   sh -c <this> cyrdeck-heartbeat CONF BINDIR USER [MINAGE]
# MINAGE > 0: when the INBOX's newest beat (its last append date, by any
# writer) is younger than MINAGE seconds, print "fresh T" and write nothing
# (one writer per pair: two consoles do not double the beats).
# Empties the heartbeat user's INBOX (ipurge: -M no recursion, the pattern is
# the one concrete mailbox; never run it without a pattern: that is every
# mailbox) and delivers one message over the local LMTP socket; its append
# time is what the replica's index header shows once it is replicated.
conf=$1 bindir=$2 user=$3 minage=${4:-0}
LC_ALL=C
export LC_ALL
case $user in ''|-*|*[!A-Za-z0-9_-]*) echo "bad heartbeat user" >&2; exit 2 ;; esac
# only on a master: a console still holding the roles from before a failover
# must not purge the heartbeat INBOX on what is now the replica (that local
# expunge would never be replicated)
cfgdir=$(sed -n 's/^[[:space:]]*configdirectory:[[:space:]]*//p' "$conf" | tail -n 1)
if [ -n "$cfgdir" ] && grep -qs '^cyrdeck failover' "$cfgdir/msg/shutdown"; then
  echo "writes are stopped here by a failover (is this host still the master?)" >&2; exit 5
fi
case $(sed -n 's/^[[:space:]]*sync_log:[[:space:]]*//p' "$conf" | tail -n 1) in
  1|[Yy]*|[Oo][Nn]|[Tt]*) ;;
  *) echo "sync_log is off here: not a replication master (roles changed?)" >&2; exit 6 ;;
esac
"$bindir/mbpath" -C "$conf" -u "$user" >/dev/null 2>&1 || {
  echo "no heartbeat mailbox for user $user on this host: create it (cm user/$user)" >&2; exit 3; }
case $minage in ''|*[!0-9]*) echo "bad MINAGE" >&2; exit 2 ;; esac
# the freshness check and the beat under one lock: two writers starting in
# the same second (two supervisors in step) both saw the old beat and both
# delivered (CI: 10 beats in 25 s at a 5 s interval). The second now waits
# and finds the first one's beat fresh. No lock (no flock(1), configdirectory
# not writable): beats may double, which only costs a message.
lockf=${cfgdir:+$cfgdir/cyrdeck-heartbeat.lock}
if [ -n "$lockf" ] && command -v flock >/dev/null 2>&1 && { : >>"$lockf"; } 2>/dev/null; then
  exec 9>>"$lockf"
  flock -w 15 9 || true
fi
if [ "$minage" -gt 0 ]; then
  hbpath=$("$bindir/mbpath" -C "$conf" -u "$user" 2>/dev/null)
  last=$(od -An -j 24 -N 4 -tu4 --endian=big "$hbpath/cyrus.index" 2>/dev/null | tr -d ' ')
  if [ -n "$last" ] && [ $(($(date +%s) - last)) -lt "$minage" ]; then
    echo "fresh $last"; exit 0
  fi
fi
"$bindir/ipurge" -C "$conf" -f -M -X -d 0 "user/$user" "user.$user" >/dev/null 2>&1
now=$(date +%s)
printf 'From: cyrdeck <cyrdeck@localhost>\r\nSubject: cyrdeck heartbeat %s\r\n\r\n%s\r\n' "$now" "$now" |
  "$bindir/deliver" -C "$conf" -a cyrdeck -r cyrdeck "$user" || {
  echo "deliver to $user failed (is an LMTP unix socket service listening at lmtpsocket?)" >&2; exit 4; }
echo "$now"
