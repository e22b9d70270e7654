# cyrdeck failover (MUTATING): one role change on one host, idempotent (a
# resumed runbook may run it again). Runs as
#   sh -c <this> cyrdeck-failover ACTION CONF CYRUSCONF CFGDIR MASTERPID SHUTDOWNFILE CHANNEL SYNCHOST SYNCPORT CLIENTCMD RUNID MODE BINDIR
# ACTION:
#   stop-writes   write CFGDIR/msg/shutdown (the fence, naming RUNID): imapd
#                 says BYE to every non-admin command, lmtpd answers 421 (the
#                 MTA keeps the mail), pop3d refuses; sync_server is not
#                 affected. No SIGHUP needed. MODE own: another run's fence
#                 is refused (exit 5: that host is not the master it seems);
#                 MODE replace: another cyrdeck fence becomes ours.
#   start-writes  remove the fence: MODE own only this run's, MODE any any
#                 cyrdeck fence (the ex-master an earlier failover fenced).
#   replay-leftovers  after stop-client: queue entries logged after the
#                 client stopped (admin sessions, EVENTS jobs) are renamed to
#                 a snapshot and replayed with a one-shot sync_client; a
#                 snapshot is deleted only after its replay succeeded.
#   stop-client   comment out the channel's DAEMON sync_client, sync_log: 0,
#                 touch the sync shutdown file (the running client exits), SIGHUP.
#   become-master sync_log: 1, sync_host/sync_port -> the old master's
#                 sync_server, the channel's DAEMON sync_client back (or added),
#                 remove the sync shutdown file, SIGHUP (writes stay as they
#                 are: start-writes is its own step). MODE held (promote):
#                 sync_log 1 only; the channel's client stays commented out
#                 and the shutdown file is touched: nothing replicates yet.
#   archive-queue rename the channel's log/log-run aside (reintegrate; MODE
#                 retired: replace-replica's retired channel).
#   add-channel   replace-replica, a failover's other replicas:
#                 [CHANNEL_]sync_host/_port -> SYNCHOST:SYNCPORT, CHANNEL (`""`
#                 for the default one) added to sync_log_channels (`""` listed
#                 when it was unset: listing channels drops the default one
#                 otherwise), the channel's DAEMON sync_client added, SIGHUP.
#   retire-channel  the channel's DAEMON client commented out, the channel
#                 taken out of sync_log_channels (the key removed when only
#                 `""` is left: as before add-channel), SIGHUP. MODE undo
#                 (an added channel taken back): its CHANNEL_sync_host/_port
#                 keys removed too. Refused if no other channel would be left.
# MASTERPID 0: Cyrus is down; the files change, no SIGHUP.
# SERVICES entries are never removed or re-added: Cyrus master reuses freed
# service slots on SIGHUP and the sync_server listener then failed to rebind
# ("unable to bind to syncserver/ipv4 socket: Address already in use"; lab).
set -eu
action=$1 conf=$2 cyrusconf=$3 cfgdir=$4 masterpid=$5 shutdownfile=$6 channel=$7 synchost=$8 syncport=$9
shift 9
clientcmd=$1 runid=$2 mode=$3 bindir=$4
LC_ALL=C
export LC_ALL
MARK='#cyrdeck-failover# '
# host_facts::FENCE_PREFIX; the run id tells this run's fence from others
STOP_TEXT="cyrdeck failover fence (run $runid): this server does not accept changes"
prefix=""
[ -n "$channel" ] && prefix="${channel}_"

# SIGHUP Cyrus master, never another "master" (Postfix's is called that too)
hup() {
  # 0: Cyrus is down (a hard failover fences a dead master): the files
  # changed are what it reads when it starts
  if [ "$masterpid" = 0 ]; then echo "(Cyrus master not running: in effect when it starts)"; return 0; fi
  args=$(ps -o args= -p "$masterpid" 2>/dev/null || true)
  case $(ps -o comm= -p "$masterpid" 2>/dev/null) in
    cyrmaster) ;;
    master)
      case $args in
        *cyrus*|*" -C $conf"*) ;;
        *) echo "pid $masterpid ($args) is not Cyrus master" >&2; exit 3 ;;
      esac ;;
    *) echo "pid $masterpid is not Cyrus master" >&2; exit 3 ;;
  esac
  kill -HUP "$masterpid"
}

# keep the first original of each file cyrdeck changes
backup() { [ -e "$1.cyrdeck-orig" ] || cp -p "$1" "$1.cyrdeck-orig"; }

# set KEY: VALUE in imapd.conf, replacing every line of KEY (Cyrus reads
# keys case-insensitively after leading blanks, and a key given twice is
# fatal to every new process)
setconf() {
  backup "$conf"
  tmp="$conf.cyrdeck-tmp"
  awk -v k="$1" '{ l = tolower($0); sub(/^[[:space:]]+/, "", l)
    if (index(l, tolower(k)) == 1 && substr(l, length(k) + 1) ~ /^[[:space:]]*:/) next
    print }' "$conf" > "$tmp"
  printf '%s: %s\n' "$1" "$2" >> "$tmp"
  chown --reference="$conf" "$tmp"; chmod --reference="$conf" "$tmp"
  mv "$tmp" "$conf"
}

# the value of KEY in imapd.conf (its last line), empty when unset
getconf() {
  awk -v k="$1" '{ l = $0; sub(/^[[:space:]]+/, "", l)
    if (index(tolower(l), tolower(k)) != 1) next
    r = substr(l, length(k) + 1); if (r !~ /^[[:space:]]*:/) next
    sub(/^[[:space:]]*:[[:space:]]*/, "", r); v = r }
    END { print v }' "$conf"
}

# remove every line of KEY from imapd.conf
unsetconf() {
  backup "$conf"
  tmp="$conf.cyrdeck-tmp"
  awk -v k="$1" '{ l = tolower($0); sub(/^[[:space:]]+/, "", l)
    if (index(l, tolower(k)) == 1 && substr(l, length(k) + 1) ~ /^[[:space:]]*:/) next
    print }' "$conf" > "$tmp"
  chown --reference="$conf" "$tmp"; chmod --reference="$conf" "$tmp"
  mv "$tmp" "$conf"
}

# is this cyrus.conf line the channel's rolling client?
is_channel_client='
  function mine(l,   w, n, i, ch) {
    if (l ~ /^[[:space:]]*#/) return 0
    if (l !~ /cmd="[^"]*sync_client[ "]/) return 0
    if (l !~ /[ "]-R[ "]|[ "]-r[ "]/) return 0
    n = split(l, w, /[ "]+/); ch = ""
    for (i = 1; i < n; i++) if (w[i] == "-n") ch = w[i + 1]
    return ch == channel
  }'

# the channel's DAEMON sync_client line(s) commented out with MARK
comment_out_client() {
  awk -v channel="$channel" -v mark="$MARK" "$is_channel_client"'
    /^[[:space:]]*DAEMON[[:space:]]*\{/ { d = 1 }
    d && /^[[:space:]]*\}/ { d = 0 }
    { if (d && mine($0) && index($0, mark) != 1) print mark $0; else print $0 }' \
    "$cyrusconf" > "$cyrusconf.cyrdeck-tmp"
  chown --reference="$cyrusconf" "$cyrusconf.cyrdeck-tmp"; chmod --reference="$cyrusconf" "$cyrusconf.cyrdeck-tmp"
  mv "$cyrusconf.cyrdeck-tmp" "$cyrusconf"
}

# the sync shutdown file (a rolling client exits at its next cycle, and
# REMOVES it: created, owned, then moved into place, never chowned after;
# a client that removed it between a create and a chown failed the step,
# full fault matrix)
touch_shutdown() {
  if [ -n "$shutdownfile" ]; then
    : > "$shutdownfile.cyrdeck-tmp"
    chown --reference="$(dirname "$shutdownfile")" "$shutdownfile.cyrdeck-tmp"
    mv -f "$shutdownfile.cyrdeck-tmp" "$shutdownfile"
  fi
}

# the channel's DAEMON sync_client back (uncommented) or added
add_client() {
  # a cyrus.conf service name is letters and digits only (masterconf.c
  # exits on anything else)
  svc="syncclient$(printf '%s' "$channel" | tr -cd 'A-Za-z0-9')"
  awk -v channel="$channel" -v mark="$MARK" -v cmd="$clientcmd" -v svc="$svc" "$is_channel_client"'
    { line = $0
      if (index(line, mark) == 1 && mine(substr(line, length(mark) + 1))) line = substr(line, length(mark) + 1)
      if (line ~ /^[[:space:]]*DAEMON[[:space:]]*\{/) { d = 1; sawd = 1 }
      if (d && mine(line) && index(line, mark) != 1) have = 1
      if (d && line ~ /^[[:space:]]*\}/) { if (!have) print "  " svc " cmd=\"" cmd "\""; have = 1; d = 0 }
      print line }
    END { if (!sawd) { print "DAEMON {"; print "  " svc " cmd=\"" cmd "\""; print "}" } }' \
    "$cyrusconf" > "$cyrusconf.cyrdeck-tmp"
  chown --reference="$cyrusconf" "$cyrusconf.cyrdeck-tmp"; chmod --reference="$cyrusconf" "$cyrusconf.cyrdeck-tmp"
  mv "$cyrusconf.cyrdeck-tmp" "$cyrusconf"
}

# sync_log_channels as words, `""` for the default channel; unset = `""`
channels_now() {
  v=$(getconf sync_log_channels)
  [ -n "$v" ] || v='""'
  printf '%s\n' "$v"
}

case $action in
  stop-writes)
    mkdir -p "$cfgdir/msg"
    f="$cfgdir/msg/shutdown"
    if [ -e "$f" ] && ! grep -q '^cyrdeck failover' "$f"; then
      echo "$f exists and is not cyrdeck's: $(head -n 1 "$f")" >&2; exit 4
    fi
    if [ -e "$f" ] && grep -qF "(run $runid)" "$f"; then
      echo "writes already stopped by this run: $f"; exit 0
    fi
    if [ -e "$f" ] && [ "$mode" = own ]; then
      echo "$f is another cyrdeck run's fence: $(head -n 1 "$f")" >&2; exit 5
    fi
    printf '%s\n' "$STOP_TEXT" > "$f.cyrdeck-tmp"
    chown --reference="$cfgdir" "$cfgdir/msg" "$f.cyrdeck-tmp"
    chmod 0644 "$f.cyrdeck-tmp"
    mv "$f.cyrdeck-tmp" "$f"
    echo "writes stopped: $f"
    ;;
  start-writes)
    f="$cfgdir/msg/shutdown"
    if [ ! -e "$f" ]; then
      echo "no shutdown message: writes accepted"
    elif ! grep -q '^cyrdeck failover' "$f"; then
      echo "$f is not cyrdeck's: left in place" >&2; exit 4
    elif [ "$mode" = any ] || grep -qF "(run $runid)" "$f"; then
      rm -f "$f"; echo "writes accepted again ($f removed)"
    else
      echo "$f is another cyrdeck run's fence: left in place" >&2; exit 5
    fi
    ;;
  replay-leftovers)
    syncdir="$cfgdir/sync"
    [ -z "$channel" ] || syncdir="$syncdir/$channel"
    for q in log-run log; do
      if [ -s "$syncdir/$q" ]; then mv "$syncdir/$q" "$syncdir/$q-cyrdeck-replay-$runid"; fi
    done
    rc=0
    for snap in "$syncdir"/*-cyrdeck-replay-*; do
      [ -e "$snap" ] || continue
      n=$(wc -l < "$snap")
      if [ -n "$channel" ]; then
        timeout 120 "$bindir/sync_client" -C "$conf" -n "$channel" -r -f "$snap" >/dev/null 2>&1 || rc=$?
      else
        timeout 120 "$bindir/sync_client" -C "$conf" -r -f "$snap" >/dev/null 2>&1 || rc=$?
      fi
      if [ "$rc" -eq 0 ]; then rm -f "$snap"; echo "replayed $n entries from $(basename "$snap")"
      else echo "replay of $snap failed (exit $rc): kept" >&2; exit 6; fi
    done
    left=$(cat "$syncdir/log-run" "$syncdir/log" 2>/dev/null | wc -l)
    echo "queue after the replay: $left entries"
    ;;
  stop-client)
    backup "$cyrusconf"
    comment_out_client
    setconf sync_log 0
    touch_shutdown
    hup
    echo "rolling client stopped (DAEMON entry commented out, sync_log 0, $shutdownfile touched)"
    ;;
  end-client)
    # only after stop-client (master no longer restarts it): the channel's
    # clients still running, SIGTERM, then SIGKILL after 5 s
    pids=$(ps -eo pid=,args= | awk -v c="$conf" -v ch="$channel" '
      $2 !~ /sync_client$/ { next }
      index(" " $0 " ", " -C " c " ") == 0 { next }
      { n = ""; for (i = 3; i < NF; i++) if ($i == "-n") n = $(i + 1); if (n == ch) print $1 }')
    if [ -z "$pids" ]; then echo "no client left"; exit 0; fi
    # shellcheck disable=SC2086 # a list of pids
    kill -TERM $pids 2>/dev/null || true
    n=0
    while [ $n -lt 10 ]; do
      # shellcheck disable=SC2086
      kill -0 $pids 2>/dev/null || break
      sleep 0.5; n=$((n + 1))
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    echo "ended client(s) $(echo $pids)"
    ;;
  become-master)
    backup "$cyrusconf"
    if [ "$mode" = held ]; then
      # promote: log every change (sync_log 1) but replicate nothing yet:
      # the old master may hold mail this host never had, and a client
      # would reach it the moment it returns. The channel's client stays
      # commented out and the shutdown file in place until reintegrate.
      setconf sync_log 1
      [ -z "$channel" ] || setconf sync_log_channels "$channel"
      comment_out_client
      touch_shutdown
      hup
      echo "now master with replication held: sync_log 1, no rolling client (reintegrate starts it)"
      exit 0
    fi
    if [ -n "$shutdownfile" ]; then rm -f "$shutdownfile"; fi
    setconf "${prefix}sync_host" "$synchost"
    setconf "${prefix}sync_port" "$syncport"
    setconf sync_log 1
    [ -z "$channel" ] || setconf sync_log_channels "$channel"
    add_client
    hup
    echo "now master: sync_log 1, replicating to $synchost:$syncport, DAEMON client ($clientcmd)"
    ;;
  archive-queue)
    # reintegrate: the old master's leftover queue was copied back user by
    # user; its files are kept (renamed), never replayed as a master again.
    # replace-replica (MODE retired): the retired channel's queue, kept
    # until the operator deletes it
    label=reintegrated
    [ "$mode" != retired ] || label=retired
    syncdir="$cfgdir/sync"
    [ -z "$channel" ] || syncdir="$syncdir/$channel"
    n=0
    for q in log-run log; do
      if [ -e "$syncdir/$q" ]; then
        n=$((n + $(wc -l < "$syncdir/$q")))
        mv "$syncdir/$q" "$syncdir/$q-cyrdeck-$label-$runid"
      fi
    done
    echo "old queue archived: $n entries kept in $syncdir/*-cyrdeck-$label-$runid"
    ;;
  add-channel)
    # the default channel too (`""`: sync_host/sync_port): a failover's
    # other replica may be the one on it
    tok=$channel
    [ -n "$tok" ] || tok='""'
    backup "$cyrusconf"
    setconf "${prefix}sync_host" "$synchost"
    setconf "${prefix}sync_port" "$syncport"
    cur=$(channels_now)
    set -f
    # shellcheck disable=SC2086 # the words of the list
    if printf '%s\n' $cur | grep -qxF -- "$tok"; then :; else setconf sync_log_channels "$cur $tok"; fi
    set +f
    add_client
    hup
    echo "channel $tok added: sync_log_channels $(getconf sync_log_channels); replicating to $synchost:$syncport ($clientcmd)"
    ;;
  retire-channel)
    tok=$channel
    [ -n "$tok" ] || tok='""'
    cur=$(channels_now)
    set -f
    # shellcheck disable=SC2086 # the words of the list
    rest=$(printf '%s\n' $cur | grep -vxF -- "$tok" | tr '\n' ' ' | sed 's/ *$//')
    set +f
    if [ -z "$rest" ]; then
      echo "retiring channel $tok would leave the master logging no channel at all: refused" >&2; exit 7
    fi
    backup "$cyrusconf"
    comment_out_client
    if [ "$rest" = '""' ]; then unsetconf sync_log_channels
    elif [ "$rest" != "$cur" ]; then setconf sync_log_channels "$rest"; fi
    if [ "$mode" = undo ] && [ -n "$channel" ]; then
      unsetconf "${channel}_sync_host"; unsetconf "${channel}_sync_port"
    fi
    hup
    echo "channel $tok retired: its DAEMON client commented out; sync_log_channels $(getconf sync_log_channels)"
    ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
