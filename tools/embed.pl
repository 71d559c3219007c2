#!/usr/bin/perl
# embed.pl NAME INPUT OUTPUT.c -- write INPUT's bytes as a C array, so the
# module can serve a file without reading it at run time:
#   const unsigned char NAME[]; const apr_size_t NAME_len;
use strict;
use warnings;

my ($name, $in, $out) = @ARGV;
die "usage: embed.pl NAME INPUT OUTPUT.c\n" unless defined $out;
open my $fh, '<:raw', $in or die "embed.pl: $in: $!\n";
my $data = do { local $/; <$fh> };
close $fh;
my @b = map { sprintf '0x%02x', $_ } unpack 'C*', $data;
open my $oh, '>', "$out.tmp" or die "embed.pl: $out: $!\n";
print $oh "/* Generated from $in by tools/embed.pl; do not edit. */\n",
          "#include <apr.h>\n",
          "const unsigned char ${name}[] = {\n";
for (my $i = 0; $i < @b; $i += 12) {
    print $oh '    ', join(', ', @b[$i .. ($i + 11 < $#b ? $i + 11 : $#b)]), ",\n";
}
print $oh "    0x00\n};\nconst apr_size_t ${name}_len = ", scalar(@b), ";\n";
close $oh or die "embed.pl: $out: $!\n";
rename "$out.tmp", $out or die "embed.pl: $out: $!\n";
