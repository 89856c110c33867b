#!/usr/bin/env bash
# Check the packaging metadata against the sources, so that a release cannot
# ship a META.json, control file, install scripts, CHANGELOG and LICENSE that
# disagree.  Needs only perl (JSON::PP is part of it).
#
#   scripts/check_packaging.sh [SRCDIR]      (default: the repository)
#
# Versions: the control file's default_version is the SQL interface version
# X.Y; META.json carries the release X.Y.Z (PGXN wants semantic versions).
# A patch release (Z) changes no SQL; a new X.Y comes with an upgrade script.
set -euo pipefail
DIR=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$DIR"

perl -MJSON::PP -e '
use strict;
use warnings;

my @errors;
sub fail { push @errors, join("", @_); }
sub slurp
{
	my ($f) = @_;
	open my $fh, "<", $f or do { fail("$f: $!"); return ""; };
	local $/;
	return scalar <$fh>;
}

my $semver = qr/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

# META.json: valid JSON, the PGXN meta spec 1.0 fields
my $meta = eval { JSON::PP->new->relaxed(0)->decode(slurp("META.json")) };
if (!$meta)
{
	print "check_packaging: META.json is not valid JSON: $@";
	exit 1;
}
for my $k (qw(name version abstract maintainer license provides meta-spec prereqs resources release_status))
{
	fail("META.json: no \"$k\"") unless defined $meta->{$k};
}
fail("META.json: meta-spec version must be 1.0.x")
  unless ($meta->{"meta-spec"}{version} // "") =~ /^1\.0\.\d+$/;
fail("META.json: version \"$meta->{version}\" is not a semantic version (X.Y.Z)")
  unless ($meta->{version} // "") =~ $semver;
fail("META.json: license must be \"postgresql\" (LICENSE is the PostgreSQL License)")
  unless ($meta->{license} // "") eq "postgresql";
fail("META.json: release_status must be stable, testing or unstable")
  unless ($meta->{release_status} // "") =~ /^(stable|testing|unstable)$/;
fail("META.json: resources needs a homepage, bugtracker or repository")
  unless grep { defined $meta->{resources}{$_} } qw(homepage bugtracker repository);

# the control file and the extension META.json provides
my $control = slurp("pgtls_admin.control");
my ($default) = $control =~ /^\s*default_version\s*=\s*\x27([^\x27]+)\x27/m;
fail("pgtls_admin.control: no default_version") unless defined $default;
$default //= "";
fail("META.json: name must be pgtls_admin") unless ($meta->{name} // "") eq "pgtls_admin";
my $ext = $meta->{provides}{pgtls_admin};
if (!$ext)
{
	fail("META.json: provides has no pgtls_admin");
	$ext = {};
}
fail("META.json: provides.pgtls_admin.version \"", $ext->{version} // "", "\" differs from version \"$meta->{version}\"")
  unless ($ext->{version} // "") eq ($meta->{version} // "");
my ($x, $y) = ($meta->{version} // "") =~ $semver;
fail("META.json: version $meta->{version} is not release $default.Z of the control file\x27s default_version $default")
  unless defined $x && "$x.$y" eq $default;
fail("META.json: provides.pgtls_admin.file \"", $ext->{file} // "", "\" does not exist")
  unless defined $ext->{file} && -f $ext->{file};
fail("META.json: provides.pgtls_admin.docfile \"$ext->{docfile}\" does not exist")
  if defined $ext->{docfile} && !-f $ext->{docfile};

# install and upgrade scripts: well named, and default_version reachable
my %script;
for my $f (glob("pgtls_admin--*.sql"))
{
	if ($f =~ /^pgtls_admin--(\d+\.\d+)\.sql$/) { $script{base}{$1} = 1; }
	elsif ($f =~ /^pgtls_admin--(\d+\.\d+)--(\d+\.\d+)\.sql$/) { $script{up}{$1} = $2; }
	else { fail("$f: neither pgtls_admin--X.Y.sql nor pgtls_admin--X.Y--X.Z.sql"); }
}
my $reachable = 0;
for my $v (keys %{ $script{base} // {} })
{
	my %seen;
	while (!$seen{$v}++)
	{
		$reachable = 1 if $v eq $default;
		last unless defined $script{up}{$v};
		$v = $script{up}{$v};
	}
}
fail("default_version $default has no install script pgtls_admin--$default.sql nor an upgrade path to it")
  unless $reachable;

# the supported PostgreSQL range: META.json prereqs = what pgtls_compat.h lets build
my $compat = slurp("include/pgtls_compat.h");
my ($lo) = $compat =~ /#if PG_VERSION_NUM < (\d+)/;
my ($hi) = $compat =~ /#if PG_VERSION_NUM >= (\d+)/;
my $pg = $meta->{prereqs}{runtime}{requires}{PostgreSQL} // "";
if (defined $lo && defined $hi)
{
	my $fmt = sub { my $n = shift; sprintf("%d.%d.0", int($n / 10000), $n % 10000) };
	my $want = ">= " . $fmt->($lo) . ", < " . $fmt->($hi);
	fail("META.json: prereqs.runtime.requires.PostgreSQL is \"$pg\", but include/pgtls_compat.h builds on \"$want\"")
	  unless $pg eq $want;
}
else
{
	fail("include/pgtls_compat.h: no PG_VERSION_NUM bounds found");
}

# CHANGELOG: a section for this version; a release in development is not "stable"
my $changelog = slurp("CHANGELOG.md");
my ($head) = $changelog =~ /^## (.+)$/m;
$head //= "";
fail("CHANGELOG.md: the latest section is \"$head\", not $default")
  unless $head =~ /^\Q$default\E\b/;
fail("META.json: release_status is stable but CHANGELOG.md says $default is in development")
  if $head =~ /in development/ && ($meta->{release_status} // "") eq "stable";

# LICENSE: the PostgreSQL License, naming the project
my $license = slurp("LICENSE");
fail("LICENSE: not the PostgreSQL License of the pgtls_admin developers")
  unless $license =~ /^PostgreSQL License/ && $license =~ /Copyright \(c\) \d{4}(-\d{4})?, The pgtls_admin developers/;

if (@errors)
{
	print "check_packaging: $_\n" for @errors;
	exit 1;
}
my $nscripts = () = glob("pgtls_admin--*.sql");
print "check_packaging: META.json $meta->{version} ($meta->{release_status}), control $default, ",
  "$nscripts SQL script(s), PostgreSQL $pg, CHANGELOG and LICENSE agree\n";
'
