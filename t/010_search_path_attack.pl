# No caller makes its own code run as another role through search_path.
#
# Two attackers, a pg_monitor member and a delegated issuer (EXECUTE on every
# function of the extension, ADMIN OPTION on one login role), each own a
# schema full of shadows of pg_catalog: every operator on the types the
# extension's queries touch (polymorphic ones also as concrete instances,
# which beat pg_catalog's even when it is searched first), every function and
# aggregate whose name appears in the extension's SQL (and many more), and
# domains named like the types its casts name, in the schema and in pg_temp.
# A shadow computes the real result, so queries keep working, but first
# records current_user (in a table and in a sequence, which a failed call
# cannot roll back), raises a NOTICE naming it and tries
# ALTER ROLE <attacker> SUPERUSER.  The shadows are built from the catalog,
# not from today's query shapes, so a query rewritten tomorrow is covered too.
#
# Each attacker then opens one session per search_path (its schema before
# pg_catalog; pg_catalog not listed; pg_temp listed last), shows that its own
# queries run the shadows there, and calls every function of the extension
# with valid arguments and with arguments that make it fail, and reads every
# relation of the extension.  No shadow may ever run as anyone but the
# attacker, and no attacker may end up superuser.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = sql_tls_cluster('shadow');
my $srcdir = "$FindBin::RealBin/..";

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Literal for SQL text: dollar quoting, with a tag the value cannot contain.
sub lit
{
	my ($v) = @_;
	die "value contains the quoting tag" if $v =~ /\$v\$/;
	return "\$v\$$v\$v\$";
}

# --- the registry has rows on every code path: CA, server, live, revoked,
# another role's, a superuser's, and the attackers' own certificates
my $ext_schema = sql(
	"SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
	 WHERE e.extname = 'pgtls_admin'");
my $superuser = sql('SELECT current_user');
sql(<<"SQL");
CREATE ROLE shadow_mon LOGIN;
GRANT pg_monitor TO shadow_mon;
CREATE ROLE shadow_iss LOGIN;
CREATE ROLE shadow_target LOGIN;
CREATE ROLE shadow_other LOGIN;
GRANT shadow_target TO shadow_iss WITH ADMIN OPTION;
CREATE SCHEMA mon_tricks AUTHORIZATION shadow_mon;
CREATE SCHEMA iss_tricks AUTHORIZATION shadow_iss;
SQL

# The delegated issuer gets EXECUTE on every function of the extension, read
# from the catalog so that functions added later are covered: the superuser-
# only ones must refuse it on their own, before looking anything up.
my @ext_functions = split /\n/, sql(<<'SQL');
SELECT p.oid::regprocedure::text
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgtls_admin')
ORDER BY 1
SQL
sql(join '', map { "GRANT EXECUTE ON FUNCTION $ext_schema.$_ TO shadow_iss;\n" } @ext_functions);

sub issue
{
	my ($role) = @_;
	return sql("SELECT serial FROM $ext_schema.pgtls_issue_client('$role')");
}
my %serial = (
	target_live => issue('shadow_target'),
	target_revoked => issue('shadow_target'),
	other => issue('shadow_other'),
	superuser => issue($superuser),
	attacker_iss => issue('shadow_iss'),
	attacker_mon => issue('shadow_mon'),
	server => sql("SELECT serial FROM $ext_schema.pgtls_certificates WHERE kind = 'server' LIMIT 1"),
	ca => sql("SELECT serial FROM $ext_schema.pgtls_certificates WHERE kind = 'ca' LIMIT 1"),
	unknown => '0DEADBEEF0DEADBEEF0DEADBEEF0DEAD',);
sql("SELECT $ext_schema.pgtls_revoke('$serial{target_revoked}', 'keyCompromise')");
ok($serial{$_} =~ /^[0-9A-F]+$/, "setup: serial $_") for sort keys %serial;
my $target_cert = sql("SELECT certificate FROM $ext_schema.pgtls_certificates WHERE serial = '$serial{target_live}'");
my $server_cert = sql("SELECT certificate FROM $ext_schema.pgtls_certificates WHERE serial = '$serial{server}'");
my $ca_cert = sql("SELECT $ext_schema.pgtls_ca_cert()");

# Requests whose keys stay in this directory, as pgtls-client-cert makes them.
my $tmp = PostgreSQL::Test::Utils::tempdir;
my %csr;
for my $role (qw(shadow_target shadow_other shadow_iss))
{
	openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$tmp/$role.key", '-subj', "/CN=$role", '-out', "$tmp/$role.csr");
	$csr{$role} = slurp_file("$tmp/$role.csr");
}

# --- what to shadow

# Names the extension's own SQL uses: every identifier followed by "(" in a
# string literal of its C sources and anywhere in its install scripts, and
# every type named in a cast.  Names that are not in pg_catalog fall away
# when the shadows are built.
my (%func_names, %type_names);
for my $file (glob("$srcdir/pgtls_admin.c $srcdir/src/*.c"), glob("$srcdir/pgtls_admin--*.sql"))
{
	my $text = slurp_file($file);
	my @chunks = $file =~ /\.c$/ ? ($text =~ /"((?:[^"\\\n]|\\.)*)"/g) : ($text);
	for my $chunk (@chunks)
	{
		$func_names{ lc $1 } = 1 while $chunk =~ /\b([A-Za-z_][A-Za-z0-9_]*)\s*\(/g;
		$type_names{ lc $1 } = 1 while $chunk =~ /::\s*([A-Za-z_][A-Za-z0-9_]*)/g;
		$type_names{ lc $1 } = 1 while $chunk =~ /\bAS\s+([A-Za-z_][A-Za-z0-9_]*)\s*\)/gi;
	}
}
ok($func_names{now} && $func_names{count}, 'the extension\'s SQL was read: now() and count() are in it')
  or diag("function names found: @{[sort keys %func_names]}");
# Generously more: what such code tends to grow into.
$func_names{$_} = 1 for qw(
  now clock_timestamp statement_timestamp transaction_timestamp timeofday make_interval
  make_timestamptz date_trunc date_part age justify_interval justify_days timezone to_char
  to_timestamp to_date current_setting set_config current_database pg_current_xact_id
  pg_current_xact_id_if_assigned txid_current pg_xact_status pg_has_role
  has_function_privilege has_table_privilege pg_get_userbyid lower upper initcap length
  octet_length char_length character_length bit_length substr strpos left right replace
  split_part starts_with format concat concat_ws btrim ltrim rtrim lpad rpad repeat reverse
  translate md5 sha224 sha256 sha384 sha512 encode decode convert_from convert_to
  quote_ident quote_literal quote_nullable regexp_replace regexp_match regexp_matches
  string_to_array array_to_string array_length array_upper array_lower array_ndims array_dims
  array_append array_prepend array_cat array_position array_positions array_remove
  array_replace cardinality unnest generate_series generate_subscripts host hostmask masklen
  network netmask family abbrev set_masklen inet_client_addr inet_server_addr text int2 int4
  int8 numeric bool abs floor ceil round trunc mod div width_bucket jsonb_build_object
  json_build_object to_json to_jsonb row_to_json jsonb_agg json_agg pg_notify hashtext
  pg_typeof count min max sum avg bool_and bool_or every array_agg string_agg);
# Types a cast might name; those spelled as SQL keywords (integer, bigint,
# boolean, numeric, interval, timestamp, varchar, ...) always mean pg_catalog.
$type_names{$_} = 1 for qw(text name int2 int4 int8 bool timestamptz bytea inet cidr oid xid8
  float4 float8 date regclass regrole jsonb);
# Operand types of the operators to shadow; their array types are added.
my @elem_types = qw(text name timestamptz timestamp interval int2 int4 int8 bool bytea inet
  cidr numeric oid xid8 float4 float8 date varchar bpchar char jsonb);

my $funcs_sql = 'ARRAY[' . join(',', map { "'$_'" } sort keys %func_names) . ']::text[]';
my $types_sql = 'ARRAY[' . join(',', map { "'$_'" } sort keys %type_names) . ']::text[]';
my $elems_sql = 'ARRAY[' . join(',', map { "'\"$_\"'" } @elem_types) . ']::regtype[]::oid[]';

# --- the shadows, built by each attacker in its own schema
sub build_shadows
{
	my ($role, $schema) = @_;
	my $build = <<'SQL';
SET search_path = pg_catalog, pg_temp;
SET client_min_messages = warning;
CREATE TABLE @S@.shadow_log (
    id           bigserial PRIMARY KEY,
    shadow       text NOT NULL,
    run_as       name NOT NULL,
    session_role name NOT NULL,
    phase        text,
    at           timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE @S@.shadow_made (kind text NOT NULL, label text NOT NULL, error text);
-- survives the rollback of a failed call
CREATE SEQUENCE @S@.foreign_hits;
GRANT USAGE ON SCHEMA @S@ TO PUBLIC;
GRANT INSERT ON @S@.shadow_log TO PUBLIC;
GRANT USAGE ON SEQUENCE @S@.shadow_log_id_seq TO PUBLIC;
GRANT USAGE, UPDATE ON SEQUENCE @S@.foreign_hits TO PUBLIC;

-- What every shadow does before returning the real result.
CREATE FUNCTION @S@.shadow_hit(what text) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    phase text := current_setting('pgtls_shadow.phase', true);
BEGIN
    IF current_user <> @R@::name THEN
        PERFORM nextval('@S@.foreign_hits');
    END IF;
    INSERT INTO @S@.shadow_log (shadow, run_as, session_role, phase)
    VALUES (what, current_user, session_user, phase);
    RAISE NOTICE 'pgtls-shadow [%] ran as current_user=% session_user=% during %',
        what, current_user, session_user, coalesce(phase, '-');
    BEGIN
        EXECUTE format('ALTER ROLE %I SUPERUSER', @R@);
        RAISE NOTICE 'pgtls-shadow [%] made % superuser, running as current_user=% during %',
            what, @R@, current_user, coalesce(phase, '-');
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
END
$f$;
CREATE FUNCTION @S@.shadow_check(what text, dummy bool) RETURNS bool
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    PERFORM @S@.shadow_hit(what);
    RETURN true;
END
$f$;

-- Polymorphic types are instantiated with each element type; a concrete
-- signature is a better match than pg_catalog's polymorphic one, so those
-- shadows win even where pg_catalog is searched first.  Range, multirange
-- and enum families are left out: the extension has no such columns.
CREATE FUNCTION pg_temp.subst(t oid, e oid) RETURNS oid LANGUAGE sql AS $f$
    SELECT CASE
        WHEN t IN ('anyelement'::regtype, 'anynonarray'::regtype, 'anycompatible'::regtype,
                   'anycompatiblenonarray'::regtype, '"any"'::regtype) THEN e
        WHEN t IN ('anyarray'::regtype, 'anycompatiblearray'::regtype)
            THEN (SELECT typarray FROM pg_type WHERE oid = e)
        ELSE t END
$f$;
CREATE FUNCTION pg_temp.poly(t oid) RETURNS bool LANGUAGE sql AS $f$
    SELECT t IN ('anyelement'::regtype, 'anynonarray'::regtype, 'anycompatible'::regtype,
                 'anycompatiblenonarray'::regtype, '"any"'::regtype, 'anyarray'::regtype,
                 'anycompatiblearray'::regtype)
$f$;
-- a real type a plpgsql function can take or return
CREATE FUNCTION pg_temp.usable(t oid) RETURNS bool LANGUAGE sql AS $f$
    SELECT EXISTS (SELECT FROM pg_type WHERE oid = t AND typtype <> 'p')
$f$;
CREATE FUNCTION pg_temp.made(kind text, label text, ddl text[]) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
    stmt text;
BEGIN
    FOREACH stmt IN ARRAY ddl LOOP
        EXECUTE stmt;
    END LOOP;
    INSERT INTO @S@.shadow_made VALUES (kind, label, NULL);
EXCEPTION
    WHEN duplicate_function OR duplicate_object THEN
        NULL;                   -- an instantiation equal to a concrete signature
    WHEN OTHERS THEN
        INSERT INTO @S@.shadow_made VALUES (kind, label, SQLSTATE || ' ' || SQLERRM);
END
$f$;

DO $build$
DECLARE
    elems   oid[] := @ELEMS@;
    alltypes oid[];
    fnames  text[] := @FUNCS@;
    r       record;
    e       oid;
    n       int := 0;
    l       oid;
    rt      oid;
    res     oid;
    label   text;
    fn      text;
    body    text;
    ok      bool;
    args    text[];
    callargs text[];
    types   text[];
    t       oid;
    argname text;
    dflt    text;
    agg     record;
BEGIN
    SELECT elems || array_agg(typarray) INTO alltypes FROM pg_type WHERE oid = ANY (elems);

    -- every operator of pg_catalog on those types
    FOR r IN SELECT o.oprname, o.oprleft, o.oprright, o.oprresult
             FROM pg_operator o
             WHERE o.oprnamespace = 'pg_catalog'::regnamespace
             ORDER BY o.oid
    LOOP
        FOREACH e IN ARRAY CASE WHEN pg_temp.poly(r.oprleft) OR pg_temp.poly(r.oprright)
                                     OR pg_temp.poly(r.oprresult)
                                THEN elems ELSE ARRAY[0::oid] END
        LOOP
            l := pg_temp.subst(r.oprleft, e);
            rt := pg_temp.subst(r.oprright, e);
            res := pg_temp.subst(r.oprresult, e);
            CONTINUE WHEN NOT ((l = 0 OR l = ANY (alltypes)) AND rt = ANY (alltypes)
                               AND pg_temp.usable(res));
            n := n + 1;
            label := format('operator %s(%s,%s)', r.oprname,
                            CASE WHEN l = 0 THEN 'NONE' ELSE format_type(l, NULL) END,
                            format_type(rt, NULL));
            fn := format('%I.shadow_op_%s', '@SN@', n);
            body := format('BEGIN PERFORM %I.shadow_hit(%L); RETURN %s; END', '@SN@', label,
                           CASE WHEN l = 0 THEN format('OPERATOR(pg_catalog.%s) $1', r.oprname)
                                ELSE format('$1 OPERATOR(pg_catalog.%s) $2', r.oprname) END);
            PERFORM pg_temp.made('operator', label, ARRAY[
                format('CREATE FUNCTION %s(%s) RETURNS %s LANGUAGE plpgsql SECURITY INVOKER '
                       'SET search_path = pg_catalog, pg_temp AS %L', fn,
                       CASE WHEN l = 0 THEN format_type(rt, NULL)
                            ELSE format_type(l, NULL) || ', ' || format_type(rt, NULL) END,
                       format_type(res, NULL), body),
                format('CREATE OPERATOR %I.%s (%s RIGHTARG = %s, FUNCTION = %s)', '@SN@',
                       r.oprname,
                       CASE WHEN l = 0 THEN '' ELSE format('LEFTARG = %s,', format_type(l, NULL)) END,
                       format_type(rt, NULL), fn)]);
        END LOOP;
    END LOOP;

    -- every signature of the pg_catalog functions and aggregates with those names
    FOR r IN SELECT p.oid, p.proname, p.pronargs, p.proargtypes, p.proargnames, p.proargmodes,
                    p.provariadic, p.prorettype, p.proretset, p.prokind
             FROM pg_proc p
             WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY (fnames)
               AND p.prokind IN ('f', 'a')
             ORDER BY p.oid
    LOOP
        label := format('function %s(%s)', r.proname, pg_get_function_identity_arguments(r.oid));
        IF r.proargmodes IS NOT NULL AND r.proargmodes && ARRAY['o', 'b', 't']::"char"[] THEN
            -- OUT parameters: result is a record, which needs a column list; not shadowed
            INSERT INTO @S@.shadow_made VALUES ('skipped', label, 'OUT parameters');
            CONTINUE;
        END IF;
        IF r.prokind = 'a' THEN
            SELECT * INTO agg FROM pg_aggregate WHERE aggfnoid = r.oid;
            IF agg.aggkind <> 'n' OR r.provariadic <> 0 THEN
                -- ordered-set aggregates: nothing the extension could use unawares
                INSERT INTO @S@.shadow_made VALUES ('skipped', label, 'ordered-set or variadic aggregate');
                CONTINUE;
            END IF;
        END IF;
        ok := pg_temp.poly(r.prorettype);
        FOR i IN 0 .. r.pronargs - 1 LOOP
            ok := ok OR pg_temp.poly(r.proargtypes[i]);
        END LOOP;
        FOREACH e IN ARRAY CASE WHEN ok THEN elems ELSE ARRAY[0::oid] END
        LOOP
            args := '{}';
            callargs := '{}';
            types := '{}';
            ok := true;
            FOR i IN 0 .. r.pronargs - 1 LOOP
                t := pg_temp.subst(r.proargtypes[i], e);
                IF r.provariadic = '"any"'::regtype AND i = r.pronargs - 1 THEN
                    -- VARIADIC "any": a PL/pgSQL function takes VARIADIC E[],
                    -- an exact match where pg_catalog's needs "any"
                    t := (SELECT typarray FROM pg_type WHERE oid = e);
                END IF;
                ok := ok AND pg_temp.usable(t);
                EXIT WHEN NOT ok;
                argname := CASE WHEN r.proargnames IS NOT NULL AND r.proargnames[i + 1] <> ''
                                THEN quote_ident(r.proargnames[i + 1]) END;
                dflt := pg_get_function_arg_default(r.oid, i + 1);
                IF r.provariadic <> 0 AND i = r.pronargs - 1 THEN
                    args := args || concat_ws(' ', 'VARIADIC', argname, format_type(t, NULL));
                    callargs := callargs || format('VARIADIC $%s', i + 1);
                ELSE
                    args := args || concat_ws(' ', argname, format_type(t, NULL),
                                              'DEFAULT ' || dflt);
                    callargs := callargs || format('$%s', i + 1);
                END IF;
                types := types || format_type(t, NULL);
            END LOOP;
            res := pg_temp.subst(r.prorettype, e);
            CONTINUE WHEN NOT ok OR NOT (pg_temp.usable(res) OR res = 'void'::regtype);
            n := n + 1;
            label := format('%s %s(%s)', CASE WHEN r.prokind = 'a' THEN 'aggregate' ELSE 'function' END,
                            r.proname, CASE WHEN r.prokind = 'a' AND r.pronargs = 0 THEN '*'
                                            ELSE array_to_string(types, ',') END);
            IF r.prokind = 'f' THEN
                body := format('BEGIN PERFORM %I.shadow_hit(%L); %s END', '@SN@', label,
                    CASE WHEN r.proretset
                         THEN format('RETURN QUERY SELECT * FROM pg_catalog.%I(%s); RETURN;',
                                     r.proname, array_to_string(callargs, ', '))
                         WHEN res = 'void'::regtype
                         THEN format('PERFORM pg_catalog.%I(%s); RETURN;',
                                     r.proname, array_to_string(callargs, ', '))
                         ELSE format('RETURN pg_catalog.%I(%s);',
                                     r.proname, array_to_string(callargs, ', ')) END);
                PERFORM pg_temp.made('function', label, ARRAY[
                    format('CREATE FUNCTION %I.%I(%s) RETURNS %s%s LANGUAGE plpgsql VOLATILE '
                           'SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS %L',
                           '@SN@', r.proname, array_to_string(args, ', '),
                           CASE WHEN r.proretset THEN 'SETOF ' ELSE '' END,
                           format_type(res, NULL), body)]);
            ELSIF r.pronargs = 0 THEN
                -- count(*): count rows, and log on every row and at the end
                PERFORM pg_temp.made('aggregate', label, ARRAY[
                    format('CREATE FUNCTION %I.shadow_agg_s_%s(s int8) RETURNS int8 LANGUAGE plpgsql '
                           'SET search_path = pg_catalog, pg_temp AS %L', '@SN@', n,
                           format('BEGIN PERFORM %I.shadow_hit(%L); RETURN s OPERATOR(pg_catalog.+) 1; END',
                                  '@SN@', label || ' transition')),
                    format('CREATE FUNCTION %I.shadow_agg_f_%s(s int8) RETURNS int8 LANGUAGE plpgsql '
                           'SET search_path = pg_catalog, pg_temp AS %L', '@SN@', n,
                           format('BEGIN PERFORM %I.shadow_hit(%L); RETURN s; END', '@SN@',
                                  label || ' final')),
                    format('CREATE AGGREGATE %I.%I(*) (SFUNC = %I.shadow_agg_s_%s, STYPE = int8, '
                           'INITCOND = ''0'', FINALFUNC = %I.shadow_agg_f_%s)',
                           '@SN@', r.proname, '@SN@', n, '@SN@', n)]);
            ELSE
                -- keep each row's arguments as text, then let the real aggregate
                -- compute the result from them, in the same order
                args := '{}';
                callargs := '{}';
                FOR i IN 1 .. r.pronargs LOOP
                    args := args || format('v%s %s', i, types[i]);
                    callargs := callargs || format('s[g.i][%s]::%s', i, types[i]);
                END LOOP;
                PERFORM pg_temp.made('aggregate', label, ARRAY[
                    format('CREATE FUNCTION %I.shadow_agg_s_%s(s text[], %s) RETURNS text[] LANGUAGE plpgsql '
                           'SET search_path = pg_catalog, pg_temp AS %L', '@SN@', n,
                           array_to_string(args, ', '),
                           format('BEGIN PERFORM %I.shadow_hit(%L); RETURN s || ARRAY[ARRAY[%s]]; END',
                                  '@SN@', label || ' transition',
                                  (SELECT string_agg(format('v%s::text', i), ', ')
                                   FROM generate_series(1, r.pronargs) i))),
                    format('CREATE FUNCTION %I.shadow_agg_f_%s(s text[]) RETURNS %s LANGUAGE plpgsql '
                           'SET search_path = pg_catalog, pg_temp AS %L', '@SN@', n,
                           format_type(res, NULL),
                           format('BEGIN PERFORM %I.shadow_hit(%L); '
                                  'RETURN (SELECT pg_catalog.%I(%s ORDER BY g.i) '
                                  'FROM pg_catalog.generate_subscripts(s, 1) AS g(i)); END',
                                  '@SN@', label || ' final', r.proname, array_to_string(callargs, ', '))),
                    format('CREATE AGGREGATE %I.%I(%s) (SFUNC = %I.shadow_agg_s_%s, STYPE = text[], '
                           'INITCOND = ''{}'', FINALFUNC = %I.shadow_agg_f_%s)',
                           '@SN@', r.proname, array_to_string(types, ', '), '@SN@', n, '@SN@', n)]);
            END IF;
        END LOOP;
    END LOOP;

    -- domains named like the types a cast names
    FOR r IN SELECT t.oid, t.typname FROM pg_type t
             WHERE t.typnamespace = 'pg_catalog'::regnamespace AND t.typname = ANY (@TYPES@)
               AND t.typtype = 'b'
    LOOP
        label := format('type %s', r.typname);
        PERFORM pg_temp.made('type', label, ARRAY[
            format('CREATE DOMAIN %I.%I AS %s CHECK (%I.shadow_check(%L, VALUE IS NULL))',
                   '@SN@', r.typname, format_type(r.oid, NULL), '@SN@', label)]);
    END LOOP;
END
$build$;
SELECT kind, count(*) FROM @S@.shadow_made WHERE error IS NULL GROUP BY kind ORDER BY kind;
SQL
	my $qs = "\"$schema\"";
	$build =~ s/\@S\@/$qs/g;
	$build =~ s/\@SN\@/$schema/g;
	$build =~ s/\@R\@/'$role'/g;
	$build =~ s/\@ELEMS\@/$elems_sql/g;
	$build =~ s/\@FUNCS\@/$funcs_sql/g;
	$build =~ s/\@TYPES\@/$types_sql/g;
	my ($out, $err);
	my $rc = $node->psql('postgres', $build, extra_params => [ '-U', $role ],
		stdout => \$out, stderr => \$err);
	is($rc, 0, "$role built its shadows") or diag($err);
	note("$role shadows by kind: " . join(', ', split /\n/, $out));
	my $failed = $node->safe_psql('postgres',
		"SELECT label || ': ' || error FROM $qs.shadow_made WHERE kind <> 'skipped' AND error IS NOT NULL");
	is($failed, '', "$role: every shadow was created") or diag($failed);
	note("not shadowed: " . $node->safe_psql('postgres',
		"SELECT string_agg(label || ' (' || error || ')', '; ') FROM $qs.shadow_made WHERE kind = 'skipped'"));
	# the builder is no good if it missed the shapes the hole was found with
	my $have = $node->safe_psql('postgres', <<"SQL");
SELECT string_agg(label, '|' ORDER BY label) FROM $qs.shadow_made
WHERE error IS NULL AND label IN ('operator <>(text,text)', 'operator =(text,text)',
  'operator >(timestamp with time zone,timestamp with time zone)',
  'operator +(timestamp with time zone,interval)', 'operator =(text[],text[])',
  'function now()', 'aggregate count(*)', 'aggregate min(timestamp with time zone)',
  'aggregate count(text)', 'type int4')
SQL
	is(scalar(split /\|/, $have), 10, "$role: the shadows include the shapes of the reported attack")
	  or diag("have: $have");
	return;
}

build_shadows('shadow_mon', 'mon_tricks');
build_shadows('shadow_iss', 'iss_tricks');

# --- the calls each attacker makes
# fns: the extension functions a call needs; it must succeed when the
# attacker may execute all of them (ok => 1) and is allowed to fail otherwise.
my $x = $ext_schema;
my @calls = (
	{ fns => ['pgtls_init_ca'], sql => "SELECT $x.pgtls_init_ca()" },
	{ fns => ['pgtls_init_ca'], sql => "SELECT $x.pgtls_init_ca(replace => false)" },
	{ fns => ['pgtls_import_ca'], sql => "SELECT $x.pgtls_import_ca(" . lit($ca_cert) . ", 'no key')" },
	{ fns => ['pgtls_ca_cert'], sql => "SELECT length($x.pgtls_ca_cert())", ok => 1 },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('shadow_target')", ok => 1 },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('shadow_target', 30, 'ed25519')", ok => 1 },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('shadow_target', lifetime => '1 hour')", ok => 1 },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client(current_user)" },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('shadow_other')" },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('$superuser')" },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('no_such_role')" },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('shadow_target', days => 0)" },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('shadow_target', key_type => 'dsa')" },
	{ fns => ['pgtls_sign_client_csr'], sql => "SELECT serial FROM $x.pgtls_sign_client_csr('shadow_target', " . lit($csr{shadow_target}) . ')', ok => 1 },
	{ fns => ['pgtls_sign_client_csr'], sql => "SELECT serial FROM $x.pgtls_sign_client_csr('shadow_other', " . lit($csr{shadow_other}) . ')' },
	{ fns => ['pgtls_sign_client_csr'], sql => "SELECT serial FROM $x.pgtls_sign_client_csr('shadow_iss', " . lit($csr{shadow_iss}) . ')' },
	{ fns => ['pgtls_sign_client_csr'], sql => "SELECT serial FROM $x.pgtls_sign_client_csr('shadow_target', 'not a request')" },
	{ fns => ['pgtls_issue_server'], sql => "SELECT serial FROM $x.pgtls_issue_server(ARRAY['shadow.example'])" },
	{ fns => ['pgtls_enable_ssl'], sql => "SELECT count(*) FROM $x.pgtls_enable_ssl()" },
	{ fns => ['pgtls_install_server_cert'], sql => "SELECT count(*) FROM $x.pgtls_install_server_cert(" . lit($server_cert) . ", 'no key')" },
	{ fns => [ 'pgtls_issue_client', 'pgtls_revoke' ],
	  sql => "SELECT $x.pgtls_revoke(serial, 'superseded') FROM $x.pgtls_issue_client('shadow_target')", ok => 1 },
	{ fns => [ 'pgtls_issue_client', 'pgtls_revoke' ],
	  sql => "SELECT $x.pgtls_revoke(serial, 'superseded', terminate => false) FROM $x.pgtls_issue_client('shadow_target')", ok => 1 },
	(map { +{ fns => ['pgtls_revoke'], sql => "SELECT $x.pgtls_revoke('$serial{$_}')" } } sort keys %serial),
	{ fns => ['pgtls_revoke'], sql => "SELECT $x.pgtls_revoke('$serial{target_live}', 'no such reason')" },
	{ fns => ['pgtls_revoke'], sql => "SELECT $x.pgtls_revoke('not hex!')" },
	{ fns => ['pgtls_crl'], sql => "SELECT length($x.pgtls_crl())", ok => 1 },
	{ fns => [ 'pgtls_issue_client', 'pgtls_renew' ],
	  sql => "SELECT r.serial FROM $x.pgtls_issue_client('shadow_target') i, $x.pgtls_renew(i.serial, 10) r", ok => 1 },
	(map { +{ fns => ['pgtls_renew'], sql => "SELECT serial FROM $x.pgtls_renew('$serial{$_}')" } } sort keys %serial),
	{ fns => [ 'pgtls_issue_client', 'pgtls_pkcs8_der' ],
	  sql => "SELECT length($x.pgtls_pkcs8_der(private_key)) FROM $x.pgtls_issue_client('shadow_target')", ok => 1 },
	{ fns => ['pgtls_pkcs8_der'], sql => "SELECT $x.pgtls_pkcs8_der('not a key')" },
	{ fns => [ 'pgtls_issue_client', 'pgtls_pkcs12' ],
	  sql => "SELECT length($x.pgtls_pkcs12(certificate, private_key, 'pass', ca_certificate)) FROM $x.pgtls_issue_client('shadow_target')",
	  ok => 1 },
	{ fns => ['pgtls_pkcs12'], sql => "SELECT $x.pgtls_pkcs12(" . lit($target_cert) . ", 'not a key', 'pass')" },
	{ fns => [ 'pgtls_issue_client', 'pgtls_encrypt_key' ],
	  sql => "SELECT length($x.pgtls_encrypt_key(private_key, 'pass')) FROM $x.pgtls_issue_client('shadow_target')", ok => 1 },
	{ fns => ['pgtls_encrypt_key'], sql => "SELECT $x.pgtls_encrypt_key('not a key', 'pass')" },
	{ fns => ['pgtls_cert_info'], sql => "SELECT serial FROM $x.pgtls_cert_info(" . lit($target_cert) . ')', ok => 1 },
	{ fns => ['pgtls_cert_info'], sql => "SELECT serial FROM $x.pgtls_cert_info(" . lit($ca_cert) . ')', ok => 1 },
	{ fns => ['pgtls_cert_info'], sql => "SELECT serial FROM $x.pgtls_cert_info('not a certificate')" },
	{ fns => ['pgtls_server_cert_info'], sql => "SELECT serial FROM $x.pgtls_server_cert_info()", ok => 1 },
	{ fns => ['pgtls_hba_check'], sql => "SELECT count(*) FROM $x.pgtls_hba_check()", ok => 1 },
	{ fns => ['pgtls_hba_check'], sql => "SELECT check_id FROM $x.pgtls_hba_check()", ok => 1 },
	{ fns => ['pgtls_metrics_server_cert'], sql => "SELECT count(*) FROM $x.pgtls_metrics_server_cert()", ok => 1 },
	{ fns => ['pgtls_metrics_crls'], sql => "SELECT count(*) FROM $x.pgtls_metrics_crls()", ok => 1 },
	{ fns => ['pgtls_hba_match'], sql => "SELECT verdict FROM $x.pgtls_hba_match('shadow_target', 'postgres', '127.0.0.1')", ok => 1 },
	{ fns => ['pgtls_hba_match'], sql => "SELECT verdict FROM $x.pgtls_hba_match('shadow_target', 'postgres', '10.1.2.3', false)", ok => 1 },
	{ fns => ['pgtls_hba_match'], sql => "SELECT verdict FROM $x.pgtls_hba_match('no_such_role', 'postgres', '::1')" },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('shadow_target', subject => 'CN=shadow_target,O=x')", ok => 1 },
	{ fns => ['pgtls_issue_client'], sql => "SELECT serial FROM $x.pgtls_issue_client('shadow_target', subject => 'CN=shadow_other')" },
	{ fns => ['pgtls_explain_login'], sql => "SELECT count(*) FROM $x.pgtls_explain_login(" . lit($target_cert) . ", 'shadow_target')", ok => 1 },
	{ fns => ['pgtls_explain_login'], sql => "SELECT count(*) FROM $x.pgtls_explain_login(" . lit($target_cert) . ", 'shadow_target', 'replication', '::1')", ok => 1 },
	{ fns => ['pgtls_explain_login'], sql => "SELECT count(*) FROM $x.pgtls_explain_login('not a certificate', 'shadow_target')" },
	{ fns => ['pgtls_ca_rotate'], sql => "SELECT count(*) FROM $x.pgtls_ca_rotate('prepare')" },
	{ fns => ['pgtls_ca_rotate'], sql => "SELECT count(*) FROM $x.pgtls_ca_rotate('retire', true)" },
	{ fns => ['pgtls_trust_add'], sql => "SELECT $x.pgtls_trust_add(" . lit($ca_cert) . ')' },
	{ fns => ['pgtls_trust_remove'], sql => "SELECT $x.pgtls_trust_remove(repeat('ab', 32))" },
	{ fns => ['pgtls_ca_request'], sql => "SELECT $x.pgtls_ca_request('CN=shadow')" },
	{ fns => ['pgtls_ca_set_certificate'], sql => "SELECT $x.pgtls_ca_set_certificate(" . lit($ca_cert) . ')' },
	{ fns => ['pgtls_session_certificates'], sql => "SELECT count(*) FROM $x.pgtls_session_certificates()", ok => 1 },
	{ fns => ['pgtls_maintain'], sql => "SELECT count(*) FROM $x.pgtls_maintain()" },
	{ fns => ['pgtls_renew_self'], sql => "SELECT serial FROM $x.pgtls_renew_self(" . lit($csr{shadow_iss}) . ')' },);

# Every function of the extension, also with every argument NULL.
for my $sig (@ext_functions)
{
	my ($name, $args) = $sig =~ /^(\w+)\((.*)\)$/ or die "odd signature $sig";
	my $n = $args eq '' ? 0 : scalar(split /,/, $args);
	push @calls, { fns => [$name], sql => "SELECT count(*) FROM $x.$name(" . join(', ', ('NULL') x $n) . ')' };
}

# A function added to the extension without calls here fails the test.
my %has_valid_call = map { map { $_ => 1 } @{ $_->{fns} } } grep { $_->{ok} } @calls;
my %superuser_only = map { $_ => 1 } qw(pgtls_init_ca pgtls_import_ca pgtls_import_ca_files pgtls_issue_server
  pgtls_enable_ssl pgtls_install_server_cert pgtls_install_server_cert_files pgtls_refresh_crl
  pgtls_revoke_unrecorded pgtls_claim_registry pgtls_maintain pgtls_ca_rotate pgtls_trust_add pgtls_trust_remove
  pgtls_ca_request pgtls_ca_set_certificate);
# works only over a certificate login, which the sessions here are not: called below over one
$superuser_only{pgtls_renew_self} = 1;
# trigger and event trigger functions cannot be called from SQL at all
$superuser_only{$_} = 1 for qw(pgtls_registry_merge pgtls_drop_guard);
for my $sig (@ext_functions)
{
	my ($name) = $sig =~ /^(\w+)/;
	ok($has_valid_call{$name} || $superuser_only{$name},
		"$name is called with valid arguments (or is superuser-only)")
	  or diag("add calls of $name to t/010_search_path_attack.pl");
}

# Every relation of the extension, read in full.
for my $rel (split /\n/, sql(<<'SQL'))
SELECT quote_ident(c.relnamespace::regnamespace::text) || '.' || quote_ident(c.relname)
FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind IN ('r', 'v', 'm')
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgtls_admin')
ORDER BY 1
SQL
{
	push @calls, { rel => $rel, sql => "SELECT * FROM $rel" };
}

# --- the attack: one session per search_path, each starting with temporary
# domains (pg_temp is searched first for types unless listed later)
my %variants = (
	first => 'SET search_path = @S@, pg_catalog, public',
	no_catalog => 'SET search_path = @S@, public',
	temp_last => 'SET search_path = @S@, pg_catalog, public, pg_temp',);

# In each session, first the attacker's own use of the shadows: proof that
# they are installed and win in this session.  With pg_catalog listed after
# the attacker's schema every shadow wins; without it, only better matches
# (concrete instances of polymorphic signatures: =(text[],text[]) over
# =(anyarray,anyarray), count(text) over count("any")).  Types resolve in
# pg_temp first unless it is listed, so the temporary domains win there and
# the schema's domains only where pg_temp comes last.
my %sanity = (
	first => "SELECT count(*), min(v.t), 'a' <> 'b', now() < now() + make_interval(days => min(v.d))
	          FROM (VALUES (pg_catalog.now(), 1::int4)) v(t, d)",
	no_catalog => "SELECT count(v.x), ARRAY['a']::pg_catalog.text[] = ARRAY['b']::pg_catalog.text[],
	               array_length(ARRAY['a']::pg_catalog.text[], 1), 1::int4
	               FROM (VALUES ('x'::pg_catalog.text)) v(x)",
	temp_last => "SELECT count(*), min(v.t), 'a' <> 'b', now() < now() + make_interval(days => min(v.d))
	          FROM (VALUES (pg_catalog.now(), 1::int4)) v(t, d)",);
my %sanity_kinds = (
	first => [qw(operator function aggregate temporary)],
	no_catalog => [qw(operator function aggregate temporary)],
	temp_last => [qw(operator function aggregate type)],);

sub attack
{
	my ($role, $schema, $variant) = @_;
	my $qs = "\"$schema\"";
	my $set_path = $variants{$variant} =~ s/\@S\@/$qs/r;
	my $script = "SET client_min_messages = notice;\n";
	# the same domains in pg_temp, made before the path is changed
	$script .= <<"SQL";
SET search_path = pg_catalog, pg_temp;
DO \$d\$
DECLARE r record;
BEGIN
    FOR r IN SELECT t.typname, t.typbasetype FROM pg_type t
             WHERE t.typnamespace = '$qs'::regnamespace AND t.typtype = 'd'
    LOOP
        EXECUTE format('CREATE DOMAIN pg_temp.%I AS %s CHECK (%I.shadow_check(%L, VALUE IS NULL))',
                       r.typname, format_type(r.typbasetype, NULL), '$schema',
                       'temporary type ' || r.typname);
    END LOOP;
END
\$d\$;
\\echo \@\@setup :ERROR
$set_path;
SET pgtls_shadow.phase = 'sanity';
$sanity{$variant};
\\echo \@\@sanity :ERROR :LAST_ERROR_MESSAGE
SQL
	for my $i (0 .. $#calls)
	{
		my $phase = "call $i";
		$script .= "SET pgtls_shadow.phase = '$phase';\n$calls[$i]{sql};\n"
		  . "\\echo \@\@outcome $i :ERROR :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE\n";
	}
	my ($out, $err);
	$node->psql('postgres', $script, extra_params => [ '-U', $role ],
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	return ($out, $err);
}

for my $attacker ([ 'shadow_mon', 'mon_tricks' ], [ 'shadow_iss', 'iss_tricks' ])
{
	my ($role, $schema) = @$attacker;
	my $qs = "\"$schema\"";
	my %may = map { $_ => 1 } split /\n/, sql(
		"SELECT p.proname FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
		 WHERE d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgtls_admin')
		   AND has_function_privilege('$role', p.oid, 'EXECUTE')");
	my %may_read = map { $_ => 1 } grep { sql("SELECT has_table_privilege('$role', '$_', 'SELECT')") eq 't' }
	  map { $_->{rel} } grep { $_->{rel} } @calls;

	for my $variant (sort keys %variants)
	{
		my ($out, $err) = attack($role, $schema, $variant);
		my $tag = "$role, search_path $variant";
		my ($setup) = $out =~ /^\@\@setup (.*)$/m;
		is($setup, 'false', "$tag: temporary domains made");
		my ($sane) = $out =~ /^\@\@sanity (.*)$/m;
		like($sane // '', qr/^false/, "$tag: its own query with the shadows works");

		# the shadows were in force in this session
		my $kinds = sql(
			"SELECT string_agg(DISTINCT split_part(shadow, ' ', 1), ' ' ORDER BY split_part(shadow, ' ', 1))
			 FROM $qs.shadow_log WHERE phase = 'sanity' AND run_as = '$role'
			   AND id > coalesce((SELECT max(id) FROM $qs.shadow_log WHERE phase = 'done'), 0)");
		for my $kind (@{ $sanity_kinds{$variant} })
		{
			like($kinds // '', qr/\b$kind\b/, "$tag: its own query ran a shadow $kind as $role");
		}

		# every call ran, and those it may make succeeded
		my %outcome;
		while ($out =~ /^\@\@outcome (\d+) (true|false) (\S+) ?(.*)$/mg)
		{
			$outcome{$1} = { failed => $2 eq 'true', sqlstate => $3, message => $4 };
		}
		is(scalar(keys %outcome), scalar(@calls), "$tag: every call was made");
		my @unexpected;
		for my $i (0 .. $#calls)
		{
			my $c = $calls[$i];
			my $o = $outcome{$i} or next;
			my $should = $c->{rel} ? $may_read{ $c->{rel} }
			  : $c->{ok} && !grep { !$may{$_} } @{ $c->{fns} };
			push @unexpected, "call $i ($c->{sql}): $o->{sqlstate} $o->{message}"
			  if $should && $o->{failed};
		}
		is(join("\n", @unexpected), '', "$tag: every call it may make succeeded");
		note("$tag: " . scalar(grep { $outcome{$_}{failed} } keys %outcome) . " of "
			  . scalar(@calls) . " calls failed, as planned");

		# no shadow ran as anyone else: the notices, which outlive a failed call ...
		my (%foreign, @phases, %super_by);
		my $hits = 0;
		while ($err =~ /NOTICE:\s+pgtls-shadow \[([^\]]*)\] ran as current_user=(\S+) session_user=\S+ during (.*)$/mg)
		{
			my ($shadow, $cur, $phase) = ($1, $2, $3);
			$hits++;
			next if $cur eq $role;
			push @phases, $phase unless $foreign{$phase};
			$foreign{$phase}{"$shadow as $cur"} //= scalar(keys %{ $foreign{$phase} });
		}
		while ($err =~ /pgtls-shadow \[[^\]]*\] made \S+ superuser, running as current_user=(\S+) during (.*)$/mg)
		{
			$super_by{$2} = $1 if $1 ne $role;
		}
		ok($hits > 0, "$tag: shadow notices reached the client ($hits)");
		my @report;
		for my $phase (@phases)
		{
			my $h = $foreign{$phase};
			my $what = $phase =~ /^call (\d+)$/ ? substr($calls[$1]{sql}, 0, 110) : $phase;
			push @report, "$what: " . join(', ', sort { $h->{$a} <=> $h->{$b} } keys %$h)
			  . ($super_by{$phase} ? "; ALTER ROLE $role SUPERUSER succeeded as $super_by{$phase}" : '');
		}
		is(join("\n", @report), '', "$tag: no shadow notice names another role");

		# ... and whatever it tried, the attacker has no new rights; reset it
		# so that the next session shows its own way in, if any
		is(sql("SELECT rolsuper FROM pg_roles WHERE rolname = '$role'"), 'f', "$tag: $role is not superuser");
		sql("ALTER ROLE $role NOSUPERUSER");
		sql("INSERT INTO $qs.shadow_log (shadow, run_as, session_role, phase) VALUES ('-', '$role', '$role', 'done')");
	}

	# ... the log of the calls that committed, and the counter that
	# survives rollbacks
	my $log = sql(
		"SELECT string_agg(phase || ': ' || shadows, E'\n' ORDER BY first)
		 FROM (SELECT phase, min(id) AS first,
		              string_agg(DISTINCT shadow || ' as ' || run_as, ', ') AS shadows
		       FROM $qs.shadow_log WHERE run_as <> '$role' GROUP BY phase) s");
	is($log, '', "$role: the shadow log holds no row run as another role");
	is(sql("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM $qs.foreign_hits"), '0',
		"$role: no shadow ran as another role, not even in a call that failed");
}

# pgtls_renew_self (granted to PUBLIC) over each attacker's own certificate
# login, its shadows first in the path: it renews, and no shadow runs as
# anyone but the attacker.
for my $attacker ([ 'shadow_mon', 'mon_tricks' ], [ 'shadow_iss', 'iss_tricks' ])
{
	my ($role, $schema) = @$attacker;
	my $qs = "\"$schema\"";
	my $dir = client_files($node, $role);
	openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$dir/new.key", '-subj', "/CN=$role", '-out', "$dir/new.csr");
	my $before = sql("SELECT coalesce(max(id), 0) FROM $qs.shadow_log");
	my ($out, $err);
	$node->psql('postgres',
		"SET search_path = $qs, pg_catalog, public;\n"
		  . "SELECT serial FROM $x.pgtls_renew_self(" . lit(slurp_file("$dir/new.csr")) . ')',
		connstr => client_connstr($dir, $role), stdout => \$out, stderr => \$err);
	like($out, qr/^[0-9A-F]{32}$/, "$role renews its own certificate over its certificate login, shadows first")
	  or diag($err);
	is(sql("SELECT count(*) FROM $qs.shadow_log WHERE id > $before AND run_as <> '$role'"), '0',
		"$role: no shadow ran as another role while renewing");
	unlike($err, qr/pgtls-shadow \[[^\]]*\] ran as current_user=(?!$role\b)/, "$role: no shadow notice names another role");
}

is(sql("SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolname LIKE 'shadow%' AND rolsuper"), '',
	'no attacker is superuser');

done_testing();
