# cyrdeck inventory: READ-ONLY. Run as: perl -e <this> CONF BINDIR MODE
# perl-base is Essential in Debian: only core builtins are used (no modules).
# MODE headers: the mailbox list as ctl_mboxlist -d prints it ("L\t<json line>"), and per live
#   mailbox the first 160 bytes of its cyrus.index in hex ("H\t<uniqueid>\t<hex>") or why not
#   ("E\t<uniqueid>\t<why>"); then the distinct pending sync-log lines ("P\t<channel>\t<line>"),
#   at most CAP (the next argument) per channel, and per cut channel how many were left out.
#   Between the two, per-user state besides messages: each quota root's line as the quota db
#   holds it ("Q\t<root>\t<line>"), each user's subscriptions ("S\t<inbox>\t<hex of the
#   sub.db key>", or "X\t<inbox>\tsubscriptions\t<why>"), the sieve script lmtpd runs (the
#   defaultbc link: "A\t<inbox>\t<hex target>") and each script source in the sieve directory
#   ("V\t<inbox>\t<hex name>\t<sha1>"), each mailbox annotation of annotations.db ("N\t<mailbox>\t
#   <hex entry>\t<hex userid>\t<value>": the value in hex, or "len:<n>:sum:<32-bit sum>" when long;
#   an empty mailbox is a server annotation), and "@@unread\t<what>\t<why>" for a store this
#   script cannot read (a quota_db, subscription_db or annotation_db other than the defaults,
#   sieveusehomedir), each user's seen state of mailboxes they do not own ("W\t<inbox>\t<uniqueid>
#   \t<mailbox or ''>\t<lastuid>\t<seenuids>", from the user's twoskip seen db).
#   An optional argument after CAP, "user:<INBOX>" or "mailbox:<name>" (internal names), lists
#   only that user's or that mailbox's entries and state (a scoped check of a big site must not
#   carry every mailbox's line); the pending lines stay whole (they decide what is in flight).
# MODE twoskip PATH: one twoskip file's live records ("K\t<hex key>\t<hex value>"; tests).
# MODE pending CAP: only those pending lines (cheap: for waiting on the queue).
# MODE records: per stdin line PARTITION:UNIQUEID:MBTYPE:HEXNAME (stdin: the list grows with the
#   site, an argument list or one SSH packet must not) the whole cyrus.index ("R\t<uniqueid>\t<hex>") and cyrus.header
#   ("C\t<uniqueid>\t<hex>"), or "E\t<uniqueid>\t<why>"; then each message annotation of its
#   cyrus.annotations ("M\t<uniqueid>\t<uid>\t<hex entry>\t<hex userid>\t<value>"), or
#   "X\t<uniqueid>\tmessage annotations\t<why>".
# Paths: <metapartition or partition>/uuid/<u0>/<u1>/<uniqueid>; legacy-dir mailboxes ('l' in
# their type) ask mbpath -M, one call each (list-form exec: names never reach a shell).
use strict;
use warnings;
my ($conf, $bindir, $mode, @want) = @ARGV;
my (%part, %meta, $cfgdir, %opt);
print "\@\@inventory 1\n";
my $c;
unless (open($c, '<', $conf)) { print "\@\@error cannot read $conf: $!\n\@\@end\n"; exit 0 }
while (<$c>) {
    if (/^partition-([^:\s]+):\s*(\S+)/) { $part{$1} = $2 }
    elsif (/^metapartition-([^:\s]+):\s*(\S+)/) { $meta{$1} = $2 }
    elsif (/^configdirectory:\s*(\S+)/) { $cfgdir = $1 }
    elsif (/^(quota_db|subscription_db|seenstate_db|annotation_db|annotation_db_path|fulldirhash|sievedir|sieveusehomedir):\s*(\S+)/) { $opt{$1} = $2 }
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

# Cyrus's dir_hash_c without fulldirhash: the first letter lowercased, 'q' for anything else.
sub dir_hash {
    my $c = lc substr($_[0], 0, 1);
    return $c =~ /^[a-z]$/ ? $c : 'q';
}

# Every quota root and its line, from quotalegacy's one file per root:
# <cfg>/quota/<h>/<root>, a domain's under <cfg>/domain/<h>/<domain>/quota/<h>/<root>.
sub print_quota {
    my $db = $opt{quota_db} // 'quotalegacy';
    if ($db ne 'quotalegacy') { print "\@\@unread\tquota\tquota_db $db\n"; return }
    return unless defined $cfgdir;
    my @tops = (['', "$cfgdir/quota"]);
    if (opendir(my $d, "$cfgdir/domain")) {
        for my $h (sort grep { !/^\./ } readdir $d) {
            opendir(my $dh, "$cfgdir/domain/$h") or next;
            push @tops, ["$_!", "$cfgdir/domain/$h/$_/quota"] for sort grep { !/^\./ } readdir $dh;
            closedir $dh;
        }
        closedir $d;
    }
    for my $t (@tops) {
        opendir(my $q, $t->[1]) or next;
        for my $h (sort grep { !/^\./ } readdir $q) {
            opendir(my $qh, "$t->[1]/$h") or next;
            for my $root (sort grep { !/^\./ && !/NEW$/ } readdir $qh) {
                my $name = $t->[0] . ($root eq 'root' && $t->[0] ne '' ? '' : $root);
                next unless in_scope($name);    # a scoped check reads its own root only
                my ($line, $err) = slurp("$t->[1]/$h/$root", 4096);
                next unless defined $line;
                $line =~ s/[\r\n].*//s;
                print "Q\t$name\t$line\n";
            }
            closedir $qh;
        }
        closedir $q;
    }
}

# One user's per-user db (SUFFIX "sub" or "seen": mboxname_conf_getpath): beside the INBOX's
# uniqueid (the uuid layout, the default since 3.6, "<id>/<suffix>.db"), or the legacy
# <cfg>/[domain/<h>/<dom>/]user/<h>/<local>.<suffix>.
sub user_db_path {
    my ($inbox, $u, $type, $suffix) = @_;
    if ($type !~ /^.[a-z]*l/) {
        return undef unless length($u) >= 2;
        return "$cfgdir/user/uuid/" . substr($u, 0, 1) . "/" . substr($u, 1, 1) . "/$u/$suffix.db";
    }
    return undef if ($opt{fulldirhash} // 'no') =~ /^(1|yes|on|true)$/i;
    my ($dom, $local) = $inbox =~ /^(?:([^!]+)!)?user\.(.+)$/ or return undef;
    my $base = defined $dom ? "$cfgdir/domain/" . dir_hash($dom) . "/$dom" : $cfgdir;
    return "$base/user/" . dir_hash($local) . "/$local.$suffix";
}

# Every user's subscriptions (flat sub.db: "<key>\t<value>" lines, keys as Cyrus stores
# them, in hex: a folder name may hold any byte).
sub print_subscriptions {
    my ($inboxes) = @_;
    my $db = $opt{subscription_db} // 'flat';
    if ($db ne 'flat') { print "\@\@unread\tsubscriptions\tsubscription_db $db\n"; return }
    return unless defined $cfgdir;
    for my $i (@$inboxes) {
        my ($inbox, $u, $type) = @$i;
        my $path = user_db_path($inbox, $u, $type, 'sub');
        unless (defined $path) { print "X\t$inbox\tsubscriptions\tno sub.db path known\n"; next }
        my $f;
        unless (open($f, '<:raw', $path)) {
            print "X\t$inbox\tsubscriptions\t$path: $!\n" unless $!{ENOENT};
            next;
        }
        while (my $l = <$f>) {
            chomp $l;
            my ($key) = split(/\t/, $l, 2);
            next if !defined $key || $key eq '' || $key =~ /^\x1fVER\x1f/;
            print "S\t$inbox\t", unpack('H*', $key), "\n";
        }
        close $f;
    }
}

# A user's sieve directory: <sievedir>/uuid/<a>/<b>/<INBOX uniqueid> (3.6+), or legacy
# <sievedir>/[domain/<h>/<dom>/]<h>/<local> (imap/user.c user_sieve_path).
sub sieve_path {
    my ($inbox, $u, $type) = @_;
    my $top = $opt{sievedir} // '/usr/sieve';
    if ($type !~ /^.[a-z]*l/) {
        return undef unless length($u) >= 2;
        return "$top/uuid/" . substr($u, 0, 1) . "/" . substr($u, 1, 1) . "/$u";
    }
    return undef if ($opt{fulldirhash} // 'no') =~ /^(1|yes|on|true)$/i;
    my ($dom, $local) = $inbox =~ /^(?:([^!]+)!)?user\.(.+)$/ or return undef;
    $local =~ tr/^/./;
    my $base = defined $dom ? "$top/domain/" . dir_hash($dom) . "/$dom" : $top;
    return "$base/" . dir_hash($local) . "/$local";
}

# Per user: the script lmtpd runs (defaultbc's target) and every script source with its
# sha1 (coreutils sha1sum, in batches: perl-base has no digest). Since 3.6 the sources live
# as messages of the user's #sieve mailbox (compared as a mailbox, GUID = sha1); the
# directory holds the compiled .bc files, which each host compiles itself, and the link.
sub print_sieve {
    my ($inboxes) = @_;
    if (($opt{sieveusehomedir} // 'no') =~ /^(1|yes|on|true)$/i) {
        print "\@\@unread\tsieve\tsieveusehomedir: scripts in home directories\n";
        return;
    }
    my @sources;
    for my $i (@$inboxes) {
        my ($inbox, $u, $type) = @$i;
        my $dir = sieve_path($inbox, $u, $type);
        unless (defined $dir) { print "X\t$inbox\tsieve\tno sieve directory path known\n"; next }
        my $d;
        unless (opendir($d, $dir)) {
            print "X\t$inbox\tsieve\t$dir: $!\n" unless $!{ENOENT};
            next;
        }
        for my $e (sort grep { !/^\./ } readdir $d) {
            if ($e eq 'defaultbc') {
                my $t = readlink("$dir/$e");
                print "A\t$inbox\t", unpack('H*', $t // ''), "\n";
            } elsif ($e =~ /\.script$/ && -f "$dir/$e") {
                push @sources, [$inbox, $e, "$dir/$e"];
            }
        }
        closedir $d;
    }
    while (my @batch = splice(@sources, 0, 200)) {
        my @sums;
        if (open(my $h, '-|', 'sha1sum', '--', map { $_->[2] } @batch)) {
            while (my $l = <$h>) { push @sums, $1 if $l =~ /^\\?([0-9a-f]{40}) / }
            close $h;
        }
        for my $k (0 .. $#batch) {
            print "V\t$batch[$k][0]\t", unpack('H*', $batch[$k][1]), "\t", ($sums[$k] // 'unreadable'), "\n";
        }
    }
}

# Every live record of a twoskip file, walked as Cyrus's own foreach does (lib/cyrusdb_twoskip.c,
# the same format 3.6 to 3.12). Header: 64 bytes, current_size (big-endian) at 48. Record: type,
# level, 16-bit keylen, 32-bit vallen (0xFFFF / 0xFFFFFFFF: a 64-bit length follows), level+1
# 64-bit pointers, two CRCs, key, value, padding to 8. From the DUMMY at 64 follow level 0: the
# larger of the first two pointers that lies below current_size (the other is a transaction's
# in progress); a DELETE record is one hop on to its first pointer. The file is read whole, once
# (a per-user or per-mailbox db is small; cyr_dbtool would cost a process per file), CRCs unchecked:
# a walk that leaves the file or loops is an error, never a guess. Returns ([[key, value]...], undef)
# or (undef, why).
sub twoskip_records {
    my ($path) = @_;
    my ($buf, $err) = slurp($path);
    return (undef, $err) unless defined $buf;
    my $size = length $buf;
    return (undef, "$path: not a twoskip file") unless $size >= 64 && substr($buf, 4, 16) eq "twoskip file\0\0\0\0";
    my $end = unpack('Q>', substr($buf, 48, 8));
    my $record = sub {
        my ($o) = @_;
        return undef if $o < 64 || $o + 24 > $size;
        my ($type, $level, $kl, $vl) = unpack('a C n N', substr($buf, $o, 8));
        my $p = $o + 8;
        if ($kl == 0xFFFF) { return undef if $p + 8 > $size; $kl = unpack('Q>', substr($buf, $p, 8)); $p += 8 }
        if ($vl == 0xFFFFFFFF) { return undef if $p + 8 > $size; $vl = unpack('Q>', substr($buf, $p, 8)); $p += 8 }
        my $n = $level + 1;
        return undef if $p + 8 * $n + 8 + $kl + $vl > $size;
        my @ptr = unpack("(Q>)$n", substr($buf, $p, 8 * $n));
        $p += 8 * $n + 8;
        return [$type, \@ptr, substr($buf, $p, $kl), substr($buf, $p + $kl, $vl)];
    };
    my $level0 = sub {
        my ($a, $b) = ($_[0][0] // 0, $_[0][1] // 0);
        return $b if $a >= $end;
        return $a if $b >= $end;
        return $a > $b ? $a : $b;
    };
    my $r = $record->(64);
    return (undef, "$path: no DUMMY record at 64") unless $r && $r->[0] eq '=';
    my (@out, $steps);
    while (my $o = $level0->($r->[1])) {
        return (undef, "$path: its records loop") if ++$steps > $size / 24;
        $r = $record->($o) or return (undef, "$path: a record past its end at $o");
        if ($r->[0] eq '-') {
            my $next = $r->[1][0] or last;
            $r = $record->($next) or return (undef, "$path: a record past its end at $next");
        }
        return (undef, "$path: a record of type '$r->[0]' at $o") unless $r->[0] eq '+';
        push @out, [$r->[2], $r->[3]];
    }
    return (\@out, undef);
}

# An annotation's value as annotate.c stores it: an unsigned long (8 bytes on a 64-bit host) whose
# first 4 bytes are the length in network order, the value, then its content type and modseq.
# Shown in hex, or "len:<n>:sum:<32-bit sum>" when long.
sub annotation_value {
    my ($raw) = @_;
    my $n = length($raw) >= 8 ? unpack('N', $raw) : 0;
    my $v = substr($raw, 8, $n);
    return length($v) <= 512 ? unpack('H*', $v) : 'len:' . length($v) . ':sum:' . unpack('%32C*', $v);
}

# Every user's seen state of mailboxes they do not own (an owner's own is the \Seen flag in the
# index): the user's seen db, key the mailbox uniqueid, value "<version> <lastread> <lastuid>
# <lastchange> <seenuids>" (imap/seen_db.c). "W\t<inbox>\t<uniqueid>\t<mailbox or ''>\t<lastuid>
# \t<seenuids>"; the mailbox's name when this listing holds it.
sub print_seen {
    my ($inboxes, $name_of) = @_;
    my $db = $opt{seenstate_db} // 'twoskip';
    if ($db ne 'twoskip') { print "\@\@unread\tseen\tseenstate_db $db\n"; return }
    return unless defined $cfgdir;
    for my $i (@$inboxes) {
        my ($inbox, $u, $type) = @$i;
        my $path = user_db_path($inbox, $u, $type, 'seen');
        unless (defined $path) { print "X\t$inbox\tseen\tno seen db path known\n"; next }
        next unless -e $path;
        my ($records, $err) = twoskip_records($path);
        unless ($records) { print "X\t$inbox\tseen\t$err\n"; next }
        for my $kv (@$records) {
            my ($id, $v) = @$kv;
            my ($lastuid, $uids) = $v =~ /^\d+ \d+ (\d+) \d+ ?([0-9:,]*)$/;
            unless (defined $lastuid && $id =~ /^[\x21-\x7e]+$/) {
                print "X\t$inbox\tseen\t$path: a record not as seen_db writes it\n";
                last;
            }
            print "W\t$inbox\t$id\t", ($name_of->{$id} // ''), "\t$lastuid\t$uids\n";
        }
    }
}

# Is this internal name (as ctl_mboxlist -d quotes it) in the scope asked for? A name with a
# JSON escape is kept: the caller filters exactly, this only trims what is sent.
my ($scope_kind, $scope_name) = split(/:/, $want[1] // '', 2);
sub in_scope {
    my ($name) = @_;
    return 1 if !defined $scope_kind || $scope_kind eq '' || $name =~ /\\/;
    return $name eq $scope_name if $scope_kind eq 'mailbox';
    return $name eq $scope_name || index($name, "$scope_name.") == 0;
}

# Every mailbox annotation, by mailbox uniqueid: twoskip's records through `cyr_dbtool ... batch`
# fed SHOW, whose output is length-prefixed ("{n}\r\n<key> {m}\r\n<value>\n": binary-safe). Key:
# uniqueid NUL entry NUL userid NUL ("" shared, "[.OwNeR.]" the owner's private); value: an
# unsigned long (8 bytes on a 64-bit host) whose first 4 bytes are the length in network order
# (annotate.c split_attribs), the value, then its content type and modseq.
# Returns uniqueid -> [lines].
sub read_annotations {
    my ($keep) = @_;    # uniqueid -> anything, or undef for every record
    my $db = $opt{annotation_db} // 'twoskip';
    if ($db ne 'twoskip') { print "\@\@unread\tannotations\tannotation_db $db\n"; return {} }
    return {} unless defined $cfgdir;
    my $path = $opt{annotation_db_path} // "$cfgdir/annotations.db";
    return {} unless -e $path;
    my $h;
    unless (open($h, '-|', 'sh', '-c', 'printf "SHOW\n" | "$0" -C "$1" "$2" twoskip batch', "$bindir/cyr_dbtool", $conf, $path)) {
        print "\@\@unread\tannotations\tcannot run cyr_dbtool: $!\n";
        return {};
    }
    binmode $h;
    # streamed, record by record (the whole output is never held), and
    # only the uniqueids asked for kept when a scope asks for some
    my %by;
    while (defined(my $head = <$h>)) {
        my ($key, $raw, $mid) = ('', '');
        unless ($head =~ /^\{(\d+)\}\r\n\z/ && read($h, $key, $1) == $1
            && defined($mid = <$h>) && $mid =~ /^ \{(\d+)\}\r\n\z/ && read($h, $raw, $1) == $1) {
            print "\@\@unread\tannotations\tcyr_dbtool's output unreadable near ", unpack('H*', substr($head, 0, 20)), "\n";
            last;
        }
        <$h>;    # the record's closing newline
        my ($u, $entry, $userid) = split(/\0/, $key, 4);
        next unless defined $entry;
        next if defined $keep && !exists $keep->{$u // ''};
        push @{ $by{$u // ''} }, join("\t", unpack('H*', $entry), unpack('H*', $userid // ''), annotation_value($raw));
    }
    close $h;
    return \%by;
}

if ($mode eq 'headers') {
    # a whole check reads annotations first (only annotated mailboxes are
    # then remembered); a scoped one after its few mailboxes are known
    my $scoped = defined $scope_kind && $scope_kind ne '';
    my $annotations = $scoped ? {} : read_annotations(undef);
    my (@annotated, %in_scope_uid, %name_of);
    my $l;
    unless (open($l, '-|', "$bindir/ctl_mboxlist", '-C', $conf, '-d')) {
        print "\@\@error cannot run ctl_mboxlist: $!\n\@\@end\n";
        exit 0;
    }
    my @inboxes;
    while (my $line = <$l>) {
        $line .= "\n" unless $line =~ /\n\z/;
        my ($listed) = $line =~ /^"((?:[^"\\]|\\.)*)": \{/;
        # every live mailbox's name by uniqueid, in scope or not: a user's seen
        # records name folders anywhere, and one no longer listed is stale
        if (defined $listed && $line =~ /"uniqueid": "([^"]+)"/) {
            my $id = $1;
            $name_of{$id} = $listed unless ($line =~ /"mbtype": "([^"]*)"/ ? $1 : 'e') =~ /^.[a-z]*[di]/;
        }
        next if defined $listed && !in_scope($listed);
        print "L\t$line";
        next unless $line =~ /^"((?:[^"\\]|\\.)*)": \{.*"uniqueid": "([^"]+)"/;
        my ($name, $u) = ($1, $2);
        my ($type) = $line =~ /"mbtype": "([^"]*)"/;
        $type //= 'e';
        next if $type =~ /^.[a-z]*[di]/;    # tombstone or intermediate: no index
        push @inboxes, [$name, $u, $type] if $name =~ /^(?:[^!]+!)?user\.[^.]+$/;
        if ($scoped) { $in_scope_uid{$u} = $name } elsif (exists $annotations->{$u}) { push @annotated, [$name, $u] }
        my ($p) = $line =~ /"partition": "([^"]+)"/;
        my $d = mailbox_dir($p // '', $u, $type, $name);
        unless (defined $d) { print "E\t$u\tno path for partition ", ($p // '?'), "\n"; next }
        my ($buf, $err) = slurp("$d/cyrus.index", 160);
        if (defined $buf) { print "H\t$u\t", unpack('H*', $buf), "\n" } else { print "E\t$u\t$err\n" }
    }
    close $l;
    print "\@\@mboxlist_exit ", ($? >> 8), "\n";
    print_quota();
    print_subscriptions(\@inboxes);
    print_sieve(\@inboxes);
    print_seen(\@inboxes, \%name_of);
    if ($scoped && %in_scope_uid) {
        $annotations = read_annotations(\%in_scope_uid);
        @annotated = map { [$in_scope_uid{$_}, $_] } sort grep { exists $annotations->{$_} } keys %in_scope_uid;
    }
    for my $a (@annotated) { print "N\t$a->[0]\t$_\n" for @{ $annotations->{$a->[1]} } }
    if (!defined $scope_kind || $scope_kind eq '') { print "N\t\t$_\n" for @{ $annotations->{''} // [] } }
    print_pending($want[0]);
} elsif ($mode eq 'twoskip') {
    # one twoskip file's live records, the reader above checked against cyr_dbtool by the tests
    my ($records, $err) = twoskip_records($want[0] // '');
    if ($records) { print "K\t", unpack('H*', $_->[0]), "\t", unpack('H*', $_->[1]), "\n" for @$records }
    else { print "\@\@error $err\n" }
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
        # message annotations: the mailbox's own twoskip db, key "<uid>\0<entry>\0<userid>\0"
        # (annotate.c make_key; "" shared, "[.OwNeR.]" the owner's private)
        next unless -e "$d/cyrus.annotations";
        my ($records, $err3) = twoskip_records("$d/cyrus.annotations");
        unless ($records) { print "X\t$u\tmessage annotations\t$err3\n"; next }
        for my $kv (@$records) {
            my ($uid, $entry, $userid) = split(/\0/, $kv->[0], 4);
            next unless defined $entry && $uid =~ /^\d+$/;
            print "M\t$u\t$uid\t", unpack('H*', $entry), "\t", unpack('H*', $userid // ''), "\t", annotation_value($kv->[1]), "\n";
        }
    }
}
print "\@\@end\n";
