# cyrdeck release (MUTATING, on the master), one action per call:
#   sh -c <this> cyrdeck-release ACTION DIR USER
#   snapshot         held-USER taken aside as releasing-USER (merged into one
#                    an earlier attempt left); prints its entry count. The
#                    replay and the removal act on it only: entries held
#                    meanwhile (the autopilot) stay in a new held-USER
#   remove-snapshot  remove releasing-USER; print the entries held since
set -eu
LC_ALL=C
export LC_ALL
action=$1 dir=$2 user=$3
cd "$dir"
h="held-$user" s="releasing-$user"
case $action in
  snapshot)
    if [ -e "$h" ]; then
      if [ -e "$s" ]; then cat "$h" >> "$s" && rm -f "$h"; else mv "$h" "$s"; fi
    fi
    # sync_client opens the file it replays read-write as cyrus: a held file
    # made by hand as root would fail the replay like a broken replica
    if [ -e "$s" ]; then chown --reference=. "$s"; chmod 0600 "$s"; fi
    if [ -e "$s" ]; then wc -l < "$s"; else echo 0; fi
    ;;
  remove-snapshot)
    rm -f -- "$s"
    if [ -s "$h" ]; then wc -l < "$h"; fi
    ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
