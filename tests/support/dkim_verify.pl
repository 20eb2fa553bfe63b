#!/usr/bin/perl
# Verify the DKIM signatures of the message on stdin with Mail::DKIM, looking public
# keys up at one DNS server (a test's loopback server), and print one line per
# signature, top to bottom:
#     <result> <domain> <selector> <algorithm> <detail...>
# result is pass, fail, invalid or none ("none - - -" when there is no signature).
# Exit 0 whatever the results; non-zero only when verification could not run.
#     perl tests/support/dkim_verify.pl HOST PORT < message.eml
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my ($host, $port) = @ARGV;
die "usage: $0 HOST PORT < message\n" unless defined $host && defined $port;

my $resolver = Net::DNS::Resolver->new(
    nameservers => [$host],
    port        => $port,
    recurse     => 1,
    retry       => 2,
    udp_timeout => 3,
    tcp_timeout => 3,
);
Mail::DKIM::DNS::resolver($resolver);

my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) {
    $line =~ s/\015?\012\z/\015\012/;    # Mail::DKIM wants CRLF
    $dkim->PRINT($line);
}
$dkim->CLOSE;

my @signatures = $dkim->signatures;
unless (@signatures) {
    print "none - - -\n";
    exit 0;
}
foreach my $sig (@signatures) {
    my $detail = $sig->result_detail // '';
    $detail =~ s/\s+/ /g;
    printf "%s %s %s %s %s\n", $sig->result // 'none', $sig->domain // '-', $sig->selector // '-',
        $sig->algorithm // '-', $detail;
}
exit 0;
