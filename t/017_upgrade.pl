# The upgrade path.  @versions lists every SQL version of the extension that
# was released, oldest first, the last being the control file's
# default_version.  Each one is installed, updated with ALTER EXTENSION
# pgtls_admin UPDATE, and must then be exactly what a fresh install of
# default_version is: the same functions, tables, views, types, grants and
# comments, the registry's rows kept.
#
# Releasing SQL version X.Y after W.Z: add pgtls_admin--W.Z--X.Y.sql, set
# default_version = 'X.Y' in pgtls_admin.control, and add 'X.Y' below.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @versions = ('1.0');

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

sub sql
{
	my ($db, $query) = @_;
	return $node->safe_psql($db, "SET client_min_messages = warning; $query");
}

# --- the versions the tree and the installation know
my $control = slurp_file("$FindBin::RealBin/../pgtls_admin.control");
my ($tree_default) = $control =~ /^\s*default_version\s*=\s*'([^']+)'/m;
is($tree_default, $versions[-1], 'the last version listed here is the control file\'s default_version');
is(sql('postgres', q{SELECT default_version FROM pg_available_extensions WHERE name = 'pgtls_admin'}),
	$tree_default, 'the installed extension is this tree\'s');
is( sql('postgres',
		q{SELECT string_agg(version, ' ' ORDER BY version) FROM pg_available_extension_versions
		  WHERE name = 'pgtls_admin'}),
	join(' ', sort @versions),
	'the installed scripts provide exactly the versions listed here');

# Every older version updates to every newer one along the chain of scripts;
# there is no way back.
my @want_paths;
for my $i (0 .. $#versions)
{
	for my $j (0 .. $#versions)
	{
		next if $i == $j;
		my $path = $i < $j ? join('--', @versions[ $i .. $j ]) : '';
		push @want_paths, "$versions[$i] -> $versions[$j]: $path";
	}
}
is( sql('postgres',
		q{SELECT string_agg(source || ' -> ' || target || ': ' || coalesce(path, ''), E'\n'
		                    ORDER BY source, target)
		  FROM pg_extension_update_paths('pgtls_admin')}),
	join("\n", sort @want_paths),
	'pg_extension_update_paths(\'pgtls_admin\'): ' . (@want_paths ? scalar(@want_paths) . ' paths' : 'none yet'));

# --- what an installed extension consists of, as text that compares
my $describe = <<'SQL';
WITH ext AS (SELECT * FROM pg_extension WHERE extname = 'pgtls_admin'),
member AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
SELECT string_agg(line, E'\n\n' ORDER BY line) FROM (
    SELECT format('extension schema=%s relocatable=%s config=%s', extnamespace::regnamespace,
                  extrelocatable,
                  (SELECT string_agg(c::regclass::text || ':' || coalesce(extcondition[i::int], ''), ','
                                     ORDER BY c::regclass::text)
                   FROM unnest(extconfig) WITH ORDINALITY AS u(c, i))) AS line
    FROM ext
    UNION ALL
    SELECT pg_describe_object(m.classid, m.objid, 0) || E'\n' || coalesce(
        CASE m.classid
        WHEN 'pg_proc'::regclass THEN
            (SELECT pg_get_functiondef(p.oid) || format(' acl=%s', p.proacl) FROM pg_proc p WHERE p.oid = m.objid)
        WHEN 'pg_class'::regclass THEN
            (SELECT format('kind=%s acl=%s options=%s rls=%s', c.relkind, c.relacl, c.reloptions,
                           c.relrowsecurity)
                 || CASE WHEN c.relkind IN ('v', 'm') THEN E'\n  ' || pg_get_viewdef(c.oid) ELSE '' END
                 || coalesce((SELECT string_agg(format(E'\n  column %s %s%s%s acl=%s', a.attname,
                                                       format_type(a.atttypid, a.atttypmod),
                                                       CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                                                       ' default ' || pg_get_expr(ad.adbin, ad.adrelid),
                                                       a.attacl), '' ORDER BY a.attnum)
                              FROM pg_attribute a
                                   LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
                 || coalesce((SELECT string_agg(E'\n  constraint ' || conname || ' ' || pg_get_constraintdef(oid),
                                                '' ORDER BY conname)
                              FROM pg_constraint WHERE conrelid = c.oid), '')
                 || coalesce((SELECT string_agg(E'\n  ' || pg_get_indexdef(indexrelid), ''
                                                ORDER BY pg_get_indexdef(indexrelid))
                              FROM pg_index WHERE indrelid = c.oid), '')
                 || coalesce((SELECT string_agg(E'\n  ' || pg_get_triggerdef(oid), '' ORDER BY tgname)
                              FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal), '')
                 || coalesce((SELECT string_agg(format(E'\n  policy %s %s %s %s %s', polname, polcmd,
                                                       polroles, pg_get_expr(polqual, polrelid),
                                                       pg_get_expr(polwithcheck, polrelid)), '' ORDER BY polname)
                              FROM pg_policy WHERE polrelid = c.oid), '')
             FROM pg_class c WHERE c.oid = m.objid)
        WHEN 'pg_type'::regclass THEN
            (SELECT format('type=%s base=%s', t.typtype, t.typbasetype::regtype)
                 || coalesce((SELECT string_agg(format(E'\n  attribute %s %s', a.attname,
                                                       format_type(a.atttypid, a.atttypmod)), '' ORDER BY a.attnum)
                              FROM pg_attribute a
                              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '')
                 || coalesce((SELECT string_agg(E'\n  label ' || enumlabel, '' ORDER BY enumsortorder)
                              FROM pg_enum WHERE enumtypid = t.oid), '')
                 || coalesce((SELECT string_agg(E'\n  check ' || pg_get_constraintdef(oid), '' ORDER BY conname)
                              FROM pg_constraint WHERE contypid = t.oid), '')
             FROM pg_type t WHERE t.oid = m.objid)
        END, '')
        || coalesce(E'\n  comment ' || obj_description(m.objid, m.classid::regclass::text::name), '')
    FROM member m) AS lines;
SQL

# The objects (blank-line separated) described differently, for a readable failure.
sub difference
{
	my ($got, $want) = @_;
	my %w = map { ($_ => 1) } split /\n\n/, $want;
	my %g = map { ($_ => 1) } split /\n\n/, $got;
	return join("\n",
		(map { "fresh install:\n$_" } grep { !$g{$_} } split /\n\n/, $want),
		(map { "after the update:\n$_" } grep { !$w{$_} } split /\n\n/, $got));
}

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
sql('fresh', 'CREATE EXTENSION pgtls_admin');
my $fresh = sql('fresh', $describe);
like($fresh, qr/^function pgtls_issue_client\(name,integer,text,text,interval\)$/m,
	'the description lists the functions');
like($fresh, qr/^table pgtls_certificates\n.*\n  column serial text not null/m,
	'... and the tables with their columns');
# one registry per cluster: the next database may hold it once this one does not
sql('fresh', 'DROP EXTENSION pgtls_admin');

# --- each released version, installed and updated
for my $i (0 .. $#versions)
{
	my $v = $versions[$i];
	my $db = "upgrade_$i";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	sql($db, "CREATE EXTENSION pgtls_admin VERSION '$v'");
	is(sql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'pgtls_admin'}), $v,
		"$v: installed");
	# a CA recorded in the registry, to see it survive the update
	sql($db, q{SELECT pgtls_init_ca(replace => true)});
	my $registry = sql($db, q{SELECT serial || ' ' || kind FROM pgtls_certificates ORDER BY serial});

	my ($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION pgtls_admin UPDATE', on_error_stop => 1);
	is($rc, 0, "$v: ALTER EXTENSION pgtls_admin UPDATE") or diag($err);
	if ($v eq $tree_default)
	{
		like($err, qr/NOTICE:  version "\Q$v\E" of extension "pgtls_admin" is already installed/,
			"$v: already the current version, the update says so");
	}
	is(sql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'pgtls_admin'}), $tree_default,
		"$v: updated to $tree_default");
	my $updated = sql($db, $describe);
	ok($updated eq $fresh, "$v: after the update, the extension is what a fresh install of $tree_default is")
	  or diag(difference($updated, $fresh));
	is(sql($db, q{SELECT serial || ' ' || kind FROM pgtls_certificates ORDER BY serial}), $registry,
		"$v: the registry's rows are kept");
	is(sql($db, q{SELECT pgtls_ca_cert() = certificate FROM pgtls_certificates WHERE kind = 'ca'}), 't',
		"$v: the CA still works");
	sql($db, 'DROP EXTENSION pgtls_admin');
}

# --- a definition of another version bound to this library gets a clear
# error, not rows of the wrong shape (every set-returning function checks
# the number of columns it was declared with)
for my $shape ('severity text, check_id text',
	'severity text, check_id text, file_name text, line_number int, rule text, message text, hint text, extra text')
{
	my ($rc, $out, $err) = $node->psql(
		'fresh', qq{CREATE FUNCTION pg_temp.other_version_hba_check() RETURNS TABLE($shape)
		           AS '\$libdir/pgtls_admin', 'pgtls_hba_check' LANGUAGE C;
		           SELECT * FROM pg_temp.other_version_hba_check();});
	my $ncols = 1 + (() = $shape =~ /,/g);
	isnt($rc, 0, "pgtls_hba_check declared with $ncols columns instead of 7 fails");
	like($err, qr/ERROR:  incorrect number of output arguments\nHINT:  The installed SQL definition does not match the pgtls_admin library; run ALTER EXTENSION pgtls_admin UPDATE\./,
		'... saying the definition does not match the library');
}

$node->stop;
done_testing();
