# cyrdeck probe: ONE exec per host per refresh gathers everything status needs.
# Runs under POSIX sh as `sh -c <this> cyrdeck-probe CONF CYRUSCONF BINDIR
#   LOGKIND LOGWHERE OFFSET INODE MAXBYTES HBUSER JCURSOR`
# LOGKIND: file (LOGWHERE is the syslog file, OFFSET/INODE where the last
# read ended), journal (LOGWHERE is Cyrus's syslog_prefix, JCURSOR the last
# entry read) or empty.
# Read-only. Output is line-oriented sections; the log chunks come last
# with an exact byte count so the parser never has to trust their content.
conf=$1 cyrusconf=$2 bindir=$3 logkind=$4 syslog=$5 offset=$6 inode=$7 maxbytes=$8 hbuser=$9
shift 9
jcursor=${1:-}
LC_ALL=C
export LC_ALL
echo "@@probe 1"
echo "@@now $(date +%s)"
echo "@@version"
"$bindir/cyr_info" -C "$conf" version 2>&1 | head -n 3
echo "@@conf"
grep -E '^[A-Za-z0-9_]*(configdirectory|sync_log|sync_log_channels|sync_host|sync_port|syslog_prefix|sync_shutdown_file|sync_repeat_interval|sync_reconnect_maxwait|sync_try_imap|servername):' "$conf" 2>/dev/null
echo "@@procs"
ps -eo pid=,ppid=,etimes=,stat=,args= 2>/dev/null | grep -E '(master|cyrmaster|sync_client|sync_server|syncserver)( |$)' | grep -v -e 'grep -E' -e cyrdeck-probe
echo "@@listen"
if command -v ss >/dev/null 2>&1; then ss -Hltn 2>/dev/null | awk '{print $4}'; else echo "?"; fi
echo "@@services"
sed -n '/^[[:space:]]*\(START\|SERVICES\|DAEMON\|EVENTS\)[[:space:]]*{/,/^[[:space:]]*}/p' "$cyrusconf" 2>/dev/null | grep -v '^[[:space:]]*#'
cfgdir=$(sed -n 's/^configdirectory:[[:space:]]*//p' "$conf" 2>/dev/null | tail -n 1)
syncdir="$cfgdir/sync"
echo "@@syncdir $syncdir"
if [ -n "$cfgdir" ] && [ -d "$syncdir" ]; then
  find "$syncdir" -maxdepth 2 -type f 2>/dev/null | while IFS= read -r f; do
    rel=${f#"$syncdir"/}
    st=$(stat -c '%s %Y %W %i' "$f" 2>/dev/null) || continue
    # sync_client renames and unlinks these files as it works: one gone
    # between the stat and the count is skipped, not reported half-read
    n=$(wc -l < "$f" 2>/dev/null) || continue
    printf 'F\t%s\t%s\t%s\n' "$rel" "$st" "$n"
  done
  for d in "$syncdir" "$syncdir"/*/; do
    [ -d "$d" ] || continue
    ch=${d#"$syncdir"}; ch=${ch#/}; ch=${ch%/}
    if [ -f "$d/log-run" ] || [ -f "$d/log" ]; then
      printf 'H\t%s\t' "$ch"
      cat "$d/log-run" "$d/log" 2>/dev/null | head -n 1
      cat "$d/log-run" "$d/log" 2>/dev/null | sort | uniq -c | sort -rn | head -n 20 | while read -r c l; do
        printf 'T\t%s\t%s\t%s\n' "$ch" "$c" "$l"
      done
      # distinct entries in queue order (oldest first) with counts and the
      # line of their first occurrence (log-run then log), capped; then
      # entries per user over the WHOLE queue (the user as SyncEntry::user
      # in synclog.rs reads it), the 5000 busiest, so a filter reaches
      # beyond the window
      cat "$d/log-run" "$d/log" 2>/dev/null | awk -v ch="$ch" -v max=500 -v maxu=5000 '
        { if (!($0 in c)) { o[n++] = $0; first[$0] = NR } c[$0]++
          k = $1; r = substr($0, length(k) + 2)
          if (substr(r, 1, 1) == "\"") { r = substr(r, 2); i = index(r, "\"") }
          else i = index(r, " ")
          a = i ? substr(r, 1, i - 1) : r
          u = ""
          if (k ~ /^(USER|UNUSER|META|SIEVE|SEEN|SUB|UNSUB)$/) u = a
          else {
            # example.com!user.alice.Sent -> alice@example.com
            dom = ""; i = index(a, "!"); if (i) { dom = substr(a, 1, i - 1); a = substr(a, i + 1) }
            if (substr(a, 1, 5) == "user.") { u = substr(a, 6); i = index(u, "."); if (i) u = substr(u, 1, i - 1); if (dom != "") u = u "@" dom }
          }
          if (u != "") { if (!(u in uc)) nu++; uc[u]++ } }
        END { for (i = 0; i < n && i < max; i++) printf "G\t%s\t%d\t%d\t%s\n", ch, c[o[i]], first[o[i]], o[i]
              printf "D\t%s\t%d\n", ch, n
              printf "V\t%s\t%d\n", ch, nu
              fflush()
              s = "sort -t \"\t\" -k3,3nr | head -n " maxu
              for (u in uc) printf "U\t%s\t%d\t%s\n", ch, uc[u], u | s
              close(s) }'
    fi
  done
else
  echo "E no sync directory (configdirectory=$cfgdir)"
fi
# the write fence (src/cyrus/host_facts.rs): its first line
if [ -n "$cfgdir" ] && [ -r "$cfgdir/msg/shutdown" ]; then
  echo "@@shutdown $(head -n 1 "$cfgdir/msg/shutdown" | tr -cd '[:print:]' | cut -c 1-200)"
fi
echo "@@syncserver"
listen=$(sed -n '/^[[:space:]]*SERVICES/,/^[[:space:]]*}/p' "$cyrusconf" 2>/dev/null | grep -v '^[[:space:]]*#' | grep 'sync_server' | sed -n 's/.*listen="\{0,1\}\([^" ]*\).*/\1/p' | head -n 1)
if [ -n "$listen" ]; then
  case $listen in
    *:*) h=${listen%:*}; p=${listen##*:} ;;
    *) h=127.0.0.1; p=$listen ;;
  esac
  case $p in *[!0-9]*) p=$(getent services "$p" | awk '{split($2,a,"/"); print a[1]}') ;; esac
  printf 'endpoint %s:%s\n' "$h" "$p"
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1; n=0; while [ $n -lt 5 ] && IFS= read -r -t 2 l <&3; do printf "banner %s\n" "$l"; n=$((n+1)); case $l in "* OK"*) break;; esac; done' "$h" "$p" 2>/dev/null || echo "fail"
else
  echo "none"
fi
# heartbeat: the append time (index header offset 24) and last UID of the
# heartbeat user's INBOX; sync_server copies the master's append time
if [ -n "$hbuser" ]; then
  hbpath=$("$bindir/mbpath" -C "$conf" -u "$hbuser" 2>/dev/null)
  hb=""
  if [ -n "$hbpath" ] && [ -r "$hbpath/cyrus.index" ]; then
    hb=$(od -An -j 24 -N 8 -tu4 --endian=big "$hbpath/cyrus.index" 2>/dev/null)
  fi
  if [ -n "$hb" ]; then echo "@@heartbeat" $hb; else echo "@@heartbeat none"; fi
fi
# traditional syslog lines carry no year and no zone: the host's zone
tz=$(readlink /etc/localtime 2>/dev/null) || tz=$(cat /etc/timezone 2>/dev/null)
echo "@@tz ${tz#*zoneinfo/} $(date +%z)"
# a chunk of FILE from START (bounded to the newest MAXBYTES); PARTIAL=1
# when it does not start where the last read ended (its first line is cut)
chunk() { # NAME FILE INODE SIZE START
  s=$5 partial=0
  if [ $(($4 - s)) -gt "$maxbytes" ]; then s=$(($4 - maxbytes)); partial=1; fi
  echo "@@$1 $3 $4 $s $(($4 - s)) $partial"
  tail -c +$((s + 1)) "$2" | head -c $(($4 - s))
}
if [ "$logkind" = file ] && [ -r "$syslog" ]; then
  # shellcheck disable=SC2046 # two numbers, split on purpose
  set -- $(stat -c '%i %s' "$syslog")
  ino=$1 size=$2
  start=$offset
  if [ "$inode" != 0 ] && [ "$ino" != "$inode" ]; then
    # rotated (renamed, a new file in its place): finish the old file first;
    # it keeps its inode, in the same directory
    old=$(find "$(dirname "$syslog")" -maxdepth 1 -type f -inum "$inode" 2>/dev/null | head -n 1)
    if [ -n "$old" ]; then
      osize=$(stat -c %s "$old")
      if [ "$osize" -gt "$offset" ]; then chunk logrotated "$old" "$inode" "$osize" "$offset"; fi
    fi
    start=0
  elif [ "$size" -lt "$offset" ]; then
    # truncated in place (copytruncate): the newest copy beside it holds
    # what was written up to the copy
    # shellcheck disable=SC2012 # names are the log's own rotations
    copy=$(ls -t "$syslog".1 "$syslog"-* 2>/dev/null | head -n 1)
    if [ -n "$copy" ] && [ -f "$copy" ]; then
      # shellcheck disable=SC2046 # two numbers, split on purpose
      set -- $(stat -c '%i %s' "$copy")
      if [ "$2" -gt "$offset" ]; then chunk logrotated "$copy" "$1" "$2" "$offset"; fi
    fi
    start=0
  elif [ "$inode" = 0 ]; then
    start=0
  fi
  chunk log "$syslog" "$ino" "$size" "$start"
elif [ "$logkind" = file ]; then
  echo "@@nolog cannot read $syslog"
elif [ "$logkind" = journal ]; then
  if ! command -v journalctl >/dev/null 2>&1; then
    echo "@@nolog no journalctl on this host"
  else
    # Cyrus logs as PREFIX/SERVICE: match every such identifier exactly
    ids=$(journalctl -F SYSLOG_IDENTIFIER 2>/dev/null)
    set --
    while IFS= read -r id; do
      case $id in "$syslog"/*) set -- "$@" "SYSLOG_IDENTIFIER=$id" ;; esac
    done <<EOF
$ids
EOF
    out=""
    if [ $# -gt 0 ]; then
      if [ -n "$jcursor" ]; then set -- "--after-cursor=$jcursor" "$@"; else set -- -n 5000 "$@"; fi
      out=$(journalctl -q --no-pager -o json \
        --output-fields=SYSLOG_IDENTIFIER,SYSLOG_PID,_PID,MESSAGE,_HOSTNAME "$@" 2>/dev/null |
        tail -c $((maxbytes + 1)))
    fi
    n=$(printf '%s' "$out" | wc -c)
    if [ "$n" -eq 0 ]; then
      echo "@@journal 0 0"
    else
      partial=0
      if [ "$n" -gt "$maxbytes" ]; then partial=1; fi
      echo "@@journal $((n + 1)) $partial"
      printf '%s\n' "$out"
    fi
  fi
fi
echo
echo "@@end"
