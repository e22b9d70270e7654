# cyrdeck quarantine (MUTATING, on the master): take USER's entries out of the
# replication queue into held-USER, requeue every other entry, so the rolling
# client goes on with everyone else. Never loses a line:
# - log-run and log are RENAMED away (atomic; lmtpd & co. open the log per
#   append, so new lines start a fresh log, and a client restarted by master
#   finds no log-run);
# - a writer that opened the old log just before the rename finishes its
#   append within the 1 s wait, into the renamed file, which is read after;
# - other users' lines are requeued, each distinct line once, in ONE locked
#   append to log (as Cyrus's own writers do it, lib/lock_fcntl.c +
#   imap/sync_log.c: fcntl write lock on the file, then check the name still
#   points at the locked inode, else reopen) — one pass whatever the backlog
#   (one cyr_synclog per line took minutes on a large queue, and cyr_synclog
#   writes nothing while sync_log is off); the count appended is verified;
#   the taken-aside files are removed only after that; on any failure they
#   stay in the sync directory, where status lists them with the held files.
# Runs as: sh -c <this> cyrdeck-quarantine CONF BINDIR SYNCDIR USER
set -eu
# CONF and BINDIR are kept in the calling convention (unused since the
# requeue no longer runs cyr_synclog)
dir=$3 user=$4
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
  # USER's INBOX as Cyrus logs it: alice -> user.alice, alice@example.com
  # -> example.com!user.alice (a dot in the local part is ^)
  awk -v u="$user" -v held="$held" -v rest="$f.rest" '
    BEGIN { l = u; d = ""; if (match(u, /@[^@]*$/)) { l = substr(u, 1, RSTART - 1); d = substr(u, RSTART + 1) }
            gsub(/\./, "^", l); root = (d == "" ? "user." l : d "!user." l) }
    { line = $0; gsub(/"/, "", line); n = split(line, w, " "); mine = 0
      for (i = 2; i <= n; i++) if (w[i] == u || w[i] == root || index(w[i], root ".") == 1) mine = 1
      if (mine) print $0 >> held; else print $0 >> rest }' "$f"
done
requeued=0
if ls quarantine-*."$tag".*.rest >/dev/null 2>&1; then
  sort -u quarantine-*."$tag".*.rest > "quarantine-requeue.$tag"
  want=$(wc -l < "quarantine-requeue.$tag")
  # (the append below creates `log` when it is missing, owned like the
  # directory: a log root made would stop lmtpd logging. Creating it here
  # first raced the rolling client, which may rename it to log-run between
  # the create and the chown: "chown: cannot access 'log'", CI)
  requeued=$(perl -e '
    use Fcntl qw(O_WRONLY O_APPEND O_CREAT F_SETLKW F_WRLCK SEEK_SET);
    my ($src, $log) = @ARGV;
    open(my $in, "<", $src) or die "$src: $!\n";
    my $data = do { local $/; <$in> };
    my $n = ($data =~ tr/\n//);
    for (1 .. 50) {
      sysopen(my $fh, $log, O_WRONLY | O_APPEND | O_CREAT, 0600) or die "$log: $!\n";
      my @dir = stat(".");
      chown $dir[4], $dir[5], $log;   # a log created here must be cyrus'"'"'s
      # struct flock on Linux x86_64/aarch64: short type, short whence, pad,
      # off_t start, off_t len, pid_t pid, pad; len 0 = the whole file
      my $lk = pack("s s x4 q q i x4", F_WRLCK, SEEK_SET, 0, 0, 0);
      fcntl($fh, F_SETLKW, $lk) or die "lock $log: $!\n";
      my @a = stat($fh);
      my @b = stat($log);
      if (!@b || $a[1] != $b[1]) { close $fh; next }   # renamed to log-run meanwhile
      my $off = 0;
      while ($off < length $data) {
        my $w = syswrite($fh, $data, length($data) - $off, $off);
        die "write $log: $!\n" unless defined $w;
        $off += $w;
      }
      close $fh or die "close $log: $!\n";
      print "$n\n";
      exit 0;
    }
    die "$log kept being renamed\n";
  ' "quarantine-requeue.$tag" log)
  if [ "$requeued" != "$want" ]; then
    echo "requeued $requeued of $want entries: the set-aside files are kept ($aside)" >&2
    exit 1
  fi
fi
rm -f $aside quarantine-*."$tag".*.rest "quarantine-requeue.$tag"
after=$(wc -l < "$held")
if [ "$after" -eq 0 ]; then
  # nothing of USER's was pending (it drained meanwhile): no empty held
  # file, which `release` would refuse and status would keep listing
  rm -f "$held"
  echo "held 0 entries for $user (none pending): no held file left; requeued $requeued distinct other entries"
  exit 0
fi
echo "held $((after - before)) entries for $user in $dir/$held ($after in all); requeued $requeued distinct other entries"
