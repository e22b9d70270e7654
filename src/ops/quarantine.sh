# cyrdeck quarantine (MUTATING, on the master): take USER's entries out of the
# replication queue into held-USER, requeue every other entry, so the rolling
# client goes on with everyone else. Never loses a line:
# - log-run and log are RENAMED away (atomic; lmtpd & co. open the log per
#   append, so new lines start a fresh log, and a client restarted by master
#   finds no log-run);
# - a writer that opened the old log just before the rename finishes its
#   append within the 1 s wait, into the renamed file, which is read after;
# - other users' lines are requeued, each distinct line once, through
#   cyr_synclog (Cyrus's own locked append); the taken-aside files are removed
#   only after that succeeded; on any failure they stay, named below.
# Runs as: sh -c <this> cyrdeck-quarantine CONF BINDIR SYNCDIR USER
set -eu
conf=$1 bindir=$2 dir=$3 user=$4
cd "$dir"
tag=$$
aside=""
# the client may rename log to log-run between two of our renames: take
# whatever exists, a few passes
for pass in 1 2 3; do
  for f in log-run log; do
    if mv "$f" "quarantine-$f.$tag.$pass" 2>/dev/null; then
      aside="$aside quarantine-$f.$tag.$pass"
    fi
  done
done
sleep 1
held="held-$user"
[ -e "$held" ] || { : > "$held"; chown --reference=. "$held"; chmod 0640 "$held"; }
before=$(wc -l < "$held")
for f in $aside; do
  awk -v u="$user" -v held="$held" -v rest="$f.rest" '
    { line = $0; gsub(/"/, "", line); n = split(line, w, " "); mine = 0
      for (i = 2; i <= n; i++) if (w[i] == u || w[i] == "user." u || index(w[i], "user." u ".") == 1) mine = 1
      if (mine) print $0 >> held; else print $0 >> rest }' "$f"
done
requeued=0
if ls quarantine-*."$tag".*.rest >/dev/null 2>&1; then
  sort -u quarantine-*."$tag".*.rest > "quarantine-requeue.$tag"
  while IFS= read -r l; do
    "$bindir/cyr_synclog" -C "$conf" "$l"
    requeued=$((requeued + 1))
  done < "quarantine-requeue.$tag"
fi
rm -f $aside quarantine-*."$tag".*.rest "quarantine-requeue.$tag"
after=$(wc -l < "$held")
echo "held $((after - before)) entries for $user in $dir/$held ($after in all); requeued $requeued distinct other entries"
