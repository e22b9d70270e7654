# cyrdeck probe: ONE exec per host per refresh gathers everything status needs.
# Runs under POSIX sh as `sh -c <this> cyrdeck-probe CONF CYRUSCONF BINDIR SYSLOG OFFSET INODE MAXBYTES HBUSER`.
# Read-only. Output is line-oriented sections; the syslog chunk comes last
# with an exact byte count so the parser never has to trust its content.
conf=$1 cyrusconf=$2 bindir=$3 syslog=$4 offset=$5 inode=$6 maxbytes=$7 hbuser=$8
LC_ALL=C
export LC_ALL
echo "@@probe 1"
echo "@@now $(date +%s)"
echo "@@version"
"$bindir/cyr_info" -C "$conf" version 2>&1 | head -n 3
echo "@@conf"
grep -E '^[A-Za-z0-9_]*(configdirectory|sync_log|sync_log_channels|sync_host|sync_port|syslog_prefix|sync_shutdown_file|sync_repeat_interval|sync_reconnect_maxwait|sync_try_imap|servername):' "$conf" 2>/dev/null
echo "@@procs"
ps -eo pid=,ppid=,etimes=,args= 2>/dev/null | grep -E '(master|cyrmaster|sync_client|sync_server|syncserver)( |$)' | grep -v -e 'grep -E' -e cyrdeck-probe
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
    n=$(wc -l < "$f" 2>/dev/null)
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
      # distinct entries in queue order (oldest first) with counts, capped
      cat "$d/log-run" "$d/log" 2>/dev/null | awk -v ch="$ch" -v max=500 '
        { if (!($0 in c)) o[n++] = $0; c[$0]++ }
        END { for (i = 0; i < n && i < max; i++) printf "G\t%s\t%d\t%s\n", ch, c[o[i]], o[i]; printf "D\t%s\t%d\n", ch, n }'
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
if [ -n "$syslog" ] && [ -r "$syslog" ]; then
  # shellcheck disable=SC2046 # two numbers, split on purpose
  set -- $(stat -c '%i %s' "$syslog")
  ino=$1 size=$2
  start=$offset
  if [ "$ino" != "$inode" ] || [ "$size" -lt "$offset" ]; then start=0; fi
  if [ $((size - start)) -gt "$maxbytes" ]; then start=$((size - maxbytes)); fi
  count=$((size - start))
  echo "@@log $ino $size $start $count"
  tail -c +$((start + 1)) "$syslog" | head -c "$count"
elif [ -n "$syslog" ]; then
  echo "@@nolog cannot read $syslog"
fi
echo
echo "@@end"
