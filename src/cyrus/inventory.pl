# cyrdeck inventory: READ-ONLY. Run as: perl -e <this> CONF BINDIR MODE
# perl-base is Essential in Debian: only core builtins are used (no modules).
# MODE headers: the mailbox list as ctl_mboxlist -d prints it ("L\t<json line>"), and per live
#   mailbox the first 160 bytes of its cyrus.index in hex ("H\t<uniqueid>\t<hex>") or why not
#   ("E\t<uniqueid>\t<why>"); then the distinct pending sync-log lines ("P\t<channel>\t<line>"),
#   at most CAP (the next argument) per channel, and per cut channel how many were left out.
# MODE pending CAP: only those pending lines (cheap: for waiting on the queue).
# MODE records: per stdin line PARTITION:UNIQUEID:MBTYPE:HEXNAME (stdin: the list grows with the
#   site, an argument list or one SSH packet must not) the whole cyrus.index ("R\t<uniqueid>\t<hex>") and cyrus.header
#   ("C\t<uniqueid>\t<hex>"), or "E\t<uniqueid>\t<why>".
# Paths: <metapartition or partition>/uuid/<u0>/<u1>/<uniqueid>; legacy-dir mailboxes ('l' in
# their type) ask mbpath -M, one call each (list-form exec: names never reach a shell).
use strict;
use warnings;
my ($conf, $bindir, $mode, @want) = @ARGV;
my (%part, %meta, $cfgdir);
print "\@\@inventory 1\n";
my $c;
unless (open($c, '<', $conf)) { print "\@\@error cannot read $conf: $!\n\@\@end\n"; exit 0 }
while (<$c>) {
    if (/^partition-([^:\s]+):\s*(\S+)/) { $part{$1} = $2 }
    elsif (/^metapartition-([^:\s]+):\s*(\S+)/) { $meta{$1} = $2 }
    elsif (/^configdirectory:\s*(\S+)/) { $cfgdir = $1 }
}
close $c;

sub mailbox_dir {
    my ($p, $u, $type, $name) = @_;
    if ($type =~ /^.[a-z]*l/) {
        my $ext = $name;
        $ext =~ tr/.^/\/./;
        open(my $m, '-|', "$bindir/mbpath", '-C', $conf, '-M', $ext) or return undef;
        my $d = <$m>;
        close $m;
        chomp $d if defined $d;
        return $d;
    }
    my $root = $meta{$p} // $part{$p};
    return undef unless defined $root && length($u) >= 2;
    return "$root/uuid/" . substr($u, 0, 1) . "/" . substr($u, 1, 1) . "/$u";
}

sub slurp {
    my ($path, $max) = @_;
    open(my $f, '<:raw', $path) or return (undef, "$path: $!");
    my $buf = '';
    if (defined $max) {
        defined(read($f, $buf, $max)) or return (undef, "$path: $!");
    } else {
        local $/;
        $buf = <$f>;
        $buf = '' unless defined $buf;
    }
    return ($buf, undef);
}

# The distinct pending sync-log lines of every channel ("P\t<channel>\t<line>"), at most
# $cap per channel; what a channel has beyond that is counted ("@@pending_cut\t<channel>\t<n>"):
# a difference the listed lines do not cover is then undecided, never "in flight".
sub print_pending {
    my ($cap) = @_;
    # the cap is the caller's (inventory.rs PENDING_CAP): none or garbage lists nothing, all counted as cut
    $cap = 0 unless defined $cap && $cap =~ /^\d+$/;
    if (defined $cfgdir && opendir(my $s, "$cfgdir/sync")) {
        my @dirs = (['', "$cfgdir/sync"]);
        for my $e (sort readdir $s) {
            next if $e =~ /^\./;
            push @dirs, [$e, "$cfgdir/sync/$e"] if -d "$cfgdir/sync/$e";
        }
        closedir $s;
        for my $d (@dirs) {
            my (%seen, $n);
            $n = 0;
            for my $f ('log-run', 'log') {
                open(my $q, '<', "$d->[1]/$f") or next;
                while (my $e = <$q>) {
                    chomp $e;
                    next if $e eq '' || $seen{$e}++;
                    print "P\t$d->[0]\t$e\n" if ++$n <= $cap;
                }
                close $q;
            }
            print "\@\@pending_cut\t$d->[0]\t", $n - $cap, "\n" if $n > $cap;
        }
    }
}

if ($mode eq 'headers') {
    my $l;
    unless (open($l, '-|', "$bindir/ctl_mboxlist", '-C', $conf, '-d')) {
        print "\@\@error cannot run ctl_mboxlist: $!\n\@\@end\n";
        exit 0;
    }
    while (my $line = <$l>) {
        $line .= "\n" unless $line =~ /\n\z/;
        print "L\t$line";
        next unless $line =~ /^"((?:[^"\\]|\\.)*)": \{.*"uniqueid": "([^"]+)"/;
        my ($name, $u) = ($1, $2);
        my ($type) = $line =~ /"mbtype": "([^"]*)"/;
        $type //= 'e';
        next if $type =~ /^.[a-z]*[di]/;    # tombstone or intermediate: no index
        my ($p) = $line =~ /"partition": "([^"]+)"/;
        my $d = mailbox_dir($p // '', $u, $type, $name);
        unless (defined $d) { print "E\t$u\tno path for partition ", ($p // '?'), "\n"; next }
        my ($buf, $err) = slurp("$d/cyrus.index", 160);
        if (defined $buf) { print "H\t$u\t", unpack('H*', $buf), "\n" } else { print "E\t$u\t$err\n" }
    }
    close $l;
    print "\@\@mboxlist_exit ", ($? >> 8), "\n";
    print_pending($want[0]);
} elsif ($mode eq 'pending') {
    print_pending($want[0]);
} elsif ($mode eq 'records') {
    # the whole list first: nothing is written before stdin ended (the
    # client sends all of it, then reads)
    my @list = <STDIN>;
    for my $w (@list) {
        chomp $w;
        next if $w eq '';
        my ($p, $u, $type, $hexname) = split(/:/, $w, 4);
        $u //= '';
        my $name = pack('H*', $hexname // '');
        my $d = mailbox_dir($p // '', $u, $type // 'e', $name);
        unless (defined $d) { print "E\t$u\tno path for partition ", ($p // '?'), "\n"; next }
        my ($ix, $err) = slurp("$d/cyrus.index");
        unless (defined $ix) { print "E\t$u\t$err\n"; next }
        my ($hd, $err2) = slurp("$d/cyrus.header");
        print "R\t$u\t", unpack('H*', $ix), "\n";
        print "C\t$u\t", unpack('H*', $hd // ''), "\n";
    }
}
print "\@\@end\n";
