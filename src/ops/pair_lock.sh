# cyrdeck pair lock: one writing runbook per pair, whoever starts it and
# from whichever machine. The lock is a file in the master's configdirectory
# (next to Cyrus's own state, on the host every cyrdeck reaches), created
# with ln(1) from a private temporary file: link(2) is atomic and fails when
# the name exists, so two cyrdecks racing cannot both take it.
#   sh -c <this> cyrdeck-lock ACTION CONF RUNID TEXT
# ACTION:
#   acquire  take it (exit 0 "taken"), or find it already ours (exit 0
#            "ours": a resumed run), or take over a lock whose lease_until
#            has passed (exit 0 "taken-over" and its text), or print the
#            holder and exit 10
#   release  remove it when RUNID holds it (exit 0), print the holder and
#            exit 10 when another run holds it; absent is fine
#   read     print it (nothing when free); read-only
#   break    remove it only if it is still the lock of RUNID (the one the
#            operator was shown); exit 10 when it changed meanwhile
set -eu
action=$1 conf=$2 runid=$3 text=$4
LC_ALL=C
export LC_ALL
cfgdir=$(sed -n 's/^configdirectory:[[:space:]]*//p' "$conf" 2>/dev/null | tail -n 1)
if [ -z "$cfgdir" ] || [ ! -d "$cfgdir" ]; then
  echo "no configdirectory in $conf" >&2
  exit 2
fi
lock="$cfgdir/cyrdeck-runbook.lock"
holds() { grep -qxF "run_id=$1" "$lock" 2>/dev/null; }
case $action in
  acquire)
    tmp="$lock.$$.tmp"
    printf '%s\n' "$text" > "$tmp"
    if ln "$tmp" "$lock" 2>/dev/null; then
      rm -f "$tmp"
      echo taken
      exit 0
    fi
    if holds "$runid"; then rm -f "$tmp"; echo ours; exit 0; fi
    # a lease that ended (a holder with no journal whose process died):
    # taken over under a mutex (mkdir is atomic), only if it is still the
    # same ended lease once the mutex is held
    until=$(sed -n 's/^lease_until=//p' "$lock" 2>/dev/null | head -n 1)
    case $until in ''|*[!0-9]*) until=0 ;; esac
    if [ "$until" -gt 0 ] && [ "$until" -lt "$(date +%s)" ] && mkdir "$lock.takeover" 2>/dev/null; then
      old=$(cat "$lock" 2>/dev/null || true)
      if [ "$(printf '%s\n' "$old" | sed -n 's/^lease_until=//p' | head -n 1)" = "$until" ]; then
        rm -f "$lock"
        if ln "$tmp" "$lock" 2>/dev/null; then
          rm -f "$tmp"
          rmdir "$lock.takeover"
          echo taken-over
          printf '%s\n' "$old"
          exit 0
        fi
      fi
      rmdir "$lock.takeover"
    fi
    rm -f "$tmp"
    cat "$lock" 2>/dev/null || echo "(unreadable lock $lock)"
    exit 10
    ;;
  release)
    [ -e "$lock" ] || { echo absent; exit 0; }
    if holds "$runid"; then rm -f "$lock"; echo released; exit 0; fi
    cat "$lock"
    exit 10
    ;;
  read)
    [ -e "$lock" ] && cat "$lock"
    exit 0
    ;;
  break)
    # a takeover cut short leaves its mutex: breaking clears it too
    rmdir "$lock.takeover" 2>/dev/null || true
    [ -e "$lock" ] || { echo absent; exit 0; }
    if holds "$runid"; then rm -f "$lock"; echo broken; exit 0; fi
    cat "$lock"
    exit 10
    ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
