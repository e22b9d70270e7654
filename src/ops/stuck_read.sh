# cyrdeck stuck-user READ-ONLY helpers (quarantine/release runbooks), one
# action per call:  sh -c <this> cyrdeck-read ACTION ARGS...
#   configdir CONF          the configdirectory imapd.conf names
#   errors LOG USER         the last error lines naming USER in a syslog file
#   errors-journal PREFIX USER  the same from the systemd journal (Cyrus's
#                           identifiers start with PREFIX/)
#   user-pending DIR USER   queue entries (log-run + log) naming USER
#   queue-count DIR         queue entries (log-run + log)
#   held-count DIR USER     entries in held-USER and releasing-USER
#   sync-servers CONF       "pid cputime stat" of this instance's sync_servers
# Nothing here writes: observe mode runs it (tests/console_lab.rs checks the
# recorded commands for write verbs).
set -u
# USER's INBOX as Cyrus logs it: alice -> user.alice, alice@example.com ->
# example.com!user.alice (a dot in the local part is ^)
root_of() {
  case $1 in
    *@*) printf '%s!user.%s' "${1##*@}" "$(printf '%s' "${1%@*}" | tr . ^)" ;;
    *) printf 'user.%s' "$(printf '%s' "$1" | tr . ^)" ;;
  esac
}
LC_ALL=C
export LC_ALL
action=$1
shift
case $action in
  configdir)
    sed -n 's/^configdirectory:[[:space:]]*//p' "$1" | tail -n 1
    ;;
  errors)
    tail -n 20000 "$1" 2>&1 | grep -F -e "user.$2" -e "user/$2" -e " $2 " -e "$(root_of "$2")" \
      | grep -E 'ERROR|bailing|IOERROR|rror' | tail -n 5
    ;;
  errors-journal)
    journalctl -q --no-pager -n 20000 -o short-iso 2>&1 | grep -F "$1/" \
      | grep -F -e "user.$2" -e "user/$2" -e " $2 " -e "$(root_of "$2")" \
      | grep -E 'ERROR|bailing|IOERROR|rror' | tail -n 5
    ;;
  user-pending)
    cat "$1/log-run" "$1/log" 2>/dev/null | tr -d '"' | awk -v u="$2" -v root="$(root_of "$2")" '
      { for (i = 2; i <= NF; i++) if ($i == u || $i == root || index($i, root ".") == 1) { c++; break } }
      END { print c + 0 }'
    ;;
  queue-count)
    cat "$1/log-run" "$1/log" 2>/dev/null | wc -l
    ;;
  held-count)
    cat "$1/held-$2" "$1/releasing-$2" 2>/dev/null | wc -l
    ;;
  sync-servers)
    ps -eo pid=,time=,stat=,args= | awk -v c="$1" '$4 ~ /sync_server$/ && index($0, c) { print $1, $2, $3 }'
    ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
