# cyrdeck doctor (READ-ONLY): the effective replication config, cyrus.conf
# and whether the syslog file is readable, in one exec:
#   sh -c <this> BINDIR CONF CYRUSCONF SYSLOG   (BINDIR arrives as $0)
# SYSLOG "journal:" means the host's log source is the systemd journal.
LC_ALL=C; export LC_ALL
echo "@@doctor 1"
"$0/cyr_info" -C "$1" conf-all 2>&1 | grep -E '^(sync_|syslog_prefix|configdirectory|servername)'
echo "@@cyrusconf"
cat "$2" 2>&1
echo "@@syslog"
if [ -z "$3" ]; then echo "none"
elif [ "$3" = journal: ]; then
  if journalctl -n 0 >/dev/null 2>&1; then echo "readable"; else echo "unreadable"; fi
elif [ -r "$3" ]; then echo "readable"; else echo "unreadable"; fi
echo "@@version"
"$0/cyr_info" -C "$1" version 2>/dev/null | grep -m 1 '^cyrus-imapd'
echo "@@end"
