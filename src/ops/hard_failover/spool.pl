# cyrdeck spool: one mailbox's message files, read or added. Run as:
#   perl -e <this> fetch CONF BINDIR MAILBOX UID...       READ-ONLY
#   perl -e <this> inject CONF BINDIR MAILBOX LASTUID     (frames on stdin)
# perl-base only (no modules); names reach no shell (list-form exec).
# A frame: "M\t<uid>\t<mtime>\t<size>\n", then exactly <size> bytes.
# fetch: a frame per UID (its file `<uid>.` in the mailbox's data directory, as mbpath
#   names it, or in its archive directory, `mbpath -A`, where Cyrus archived it), or
#   "E\t<uid>\t<why>\n"; then "@@end\n".
# inject: every frame is read whole into a dot-file first (a stdin cut off adds nothing).
#   A file `N.` above LASTUID holding the same bytes (a run cut off before reconstruct) is
#   reused; a frame whose <uid> is above LASTUID and free keeps it; the others take the next
#   UIDs above LASTUID, above every `N.` file there. Then `reconstruct MAILBOX`, which takes
#   each file in as UID N with the sha1 of its bytes as GUID and logs it for replication.
#   Prints "I\t<want>\t<uid>\t<new|same>" per frame, then reconstruct's output; exits with
#   reconstruct's status (2 when nothing was added).
use strict;
use warnings;
$SIG{PIPE} = 'IGNORE';
$| = 1;
binmode STDOUT;
my ($mode, $conf, $bindir, $mailbox, @rest) = @ARGV;
my @tmps;
sub fail {
    unlink @tmps;
    print "\@\@error $_[0]\n";
    exit 2;
}
defined $mailbox or fail("usage: MODE CONF BINDIR MAILBOX ...");
open(my $mp, '-|', "$bindir/mbpath", '-C', $conf, $mailbox) or fail("mbpath: $!");
my $dir = <$mp>;
close $mp;
defined $dir or fail("mbpath names no directory for $mailbox");
chomp $dir;
-d $dir or fail("$dir: not a directory");

sub slurp {
    my ($f) = @_;
    open(my $h, '<', $f) or return undef;
    binmode $h;
    local $/;
    my $b = <$h>;
    close $h;
    return defined $b ? $b : '';
}

# A message Cyrus archived (archive_enabled, archivepartition-NAME) lives in the archive
# partition's directory of the mailbox (`mbpath -A`), not in its data directory.
my $archive_dir;
sub archive_dir {
    return $archive_dir if defined $archive_dir;
    $archive_dir = '';
    if (open(my $ap, '-|', "$bindir/mbpath", '-C', $conf, '-A', $mailbox)) {
        my $d = <$ap>;
        close $ap;
        if (defined $d) { chomp $d; $archive_dir = $d if $d ne $dir && -d $d }
    }
    return $archive_dir;
}

if ($mode eq 'fetch') {
    for my $uid (@rest) {
        if ($uid !~ /^[0-9]+\z/) { print "E\t$uid\tnot a UID\n"; next }
        my $f = "$dir/$uid.";
        $f = archive_dir() . "/$uid." if !-e $f && archive_dir() ne '';
        my @st = stat($f);
        my $b = @st ? slurp($f) : undef;
        if (!defined $b) { print "E\t$uid\t$f: $!\n"; next }
        print "M\t$uid\t$st[9]\t" . length($b) . "\n", $b;
    }
    print "\@\@end\n";
    exit 0;
}
$mode eq 'inject' or fail("unknown mode $mode");
my ($last) = @rest;
(defined $last && $last =~ /^[0-9]+\z/) or fail("LASTUID missing");
binmode STDIN;
my @ds = stat($dir);
my @frames;
while (defined(my $line = <STDIN>)) {
    $line =~ /^M\t([0-9]+)\t([0-9]+)\t([0-9]+)\n\z/ or fail("bad frame header");
    my ($want, $mtime, $size) = ($1, $2, $3);
    my $b = '';
    while (length($b) < $size) {
        my $r = read(STDIN, $b, $size - length($b), length($b));
        fail("stdin ended inside a message: nothing added") unless $r;
    }
    my $tmp = "$dir/.cyrdeck-inject-$$-" . scalar(@frames);
    push @tmps, $tmp;
    my $h;
    open($h, '>', $tmp) or fail("$tmp: $!");
    binmode $h;
    print $h $b;
    close $h or fail("$tmp: $!");
    chmod 0600, $tmp;
    chown $ds[4], $ds[5], $tmp;
    utime $mtime, $mtime, $tmp;
    push @frames, { want => $want, tmp => $tmp, bytes => $b };
}
@frames or fail("no message on stdin");
opendir(my $dh, $dir) or fail("$dir: $!");
my %taken = map { /^([0-9]+)\.\z/ && $1 > $last ? ($1 => 1) : () } readdir $dh;
closedir $dh;
my %used;
# the same bytes already there: an earlier run's file, never taken in
for my $f (@frames) {
    for my $n (sort { $a <=> $b } keys %taken) {
        next if $used{$n};
        my $p = "$dir/$n.";
        next unless (-s $p || 0) == length($f->{bytes});
        my $b = slurp($p);
        if (defined $b && $b eq $f->{bytes}) { $f->{uid} = $n; $f->{same} = 1; $used{$n} = 1; last }
    }
}
for my $f (grep { !defined $_->{uid} } @frames) {
    my $w = $f->{want};
    if ($w > $last && !$taken{$w} && !$used{$w}) { $f->{uid} = $w; $used{$w} = 1 }
}
my $next = $last;
for my $n (keys(%taken), keys(%used)) { $next = $n if $n > $next }
for my $f (grep { !defined $_->{uid} } @frames) {
    $next++;
    $f->{uid} = $next;
    $used{$next} = 1;
}
for my $f (@frames) {
    if ($f->{same}) { unlink $f->{tmp}; next }
    rename($f->{tmp}, "$dir/$f->{uid}.") or fail("$dir/$f->{uid}.: $!");
}
@tmps = ();
print "I\t$_->{want}\t$_->{uid}\t" . ($_->{same} ? "same" : "new") . "\n" for @frames;
my $st = system("$bindir/reconstruct", '-C', $conf, $mailbox);
exit($st == 0 ? 0 : ($st >> 8) || 1);
