/*
 * cluster.c
 *		One registry per cluster: which database holds it.
 *
 * The CA, the CRL and the journal are files of the cluster, so two
 * registries in two databases would each rebuild the one CRL from half the
 * truth (a revocation made in one would be undone by a rewrite from the
 * other).  CREATE EXTENSION records its database in pgtls/registry (the
 * background worker of every node reads it to know where to connect) and
 * is refused in another database while that one exists.  The record is
 * written when the creating transaction commits, and cleared when a
 * transaction that drops the extension commits (an event trigger notices
 * the DROP); a record naming a database that no longer exists is stale.
 */
#include "pgtls_stores.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/syscache.h"

static bool claim_pending = false;
static bool drop_pending = false;
static bool callback_registered = false;

static char *
marker_path(void)
{
	return psprintf("%s/pgtls/registry", DataDir);
}

/* The database the marker names; false when there is none (or it is unreadable). */
bool
pgtls_registry_database(Oid *dboid)
{
	PgtlsFileRead f;
	unsigned int oid;

	if (!pgtls_try_read_file(marker_path(), false, &f) ||
		sscanf(f.data, "database %u", &oid) != 1 || oid == InvalidOid)
		return false;
	*dboid = (Oid) oid;
	return true;
}

static void
write_marker(void)
{
	char	   *content = psprintf("database %u %s\n", MyDatabaseId,
								   get_database_name(MyDatabaseId));

	pgtls_commit_file(pgtls_stage_file(marker_path(), content, strlen(content), 0600));
}

static void
cluster_xact_callback(XactEvent event, void *arg)
{
	Oid			dboid;

	if (event == XACT_EVENT_PRE_COMMIT)
	{
		if (claim_pending)
			write_marker();
		if (drop_pending && !OidIsValid(get_extension_oid("pgtls_admin", true)) &&
			pgtls_registry_database(&dboid) && dboid == MyDatabaseId)
			(void) unlink(marker_path());
	}
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		claim_pending = drop_pending = false;
}

static void
register_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(cluster_xact_callback, NULL);
		callback_registered = true;
	}
}

/*
 * From CREATE EXTENSION: this database holds the cluster's registry, unless
 * another existing database does.
 */
void
pgtls_registry_claim(void)
{
	Oid			dboid;
	HeapTuple	tup;

	if (pgtls_registry_database(&dboid) && dboid != MyDatabaseId &&
		HeapTupleIsValid(tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid))))
	{
		char	   *name = pstrdup(NameStr(((Form_pg_database) GETSTRUCT(tup))->datname));

		ReleaseSysCache(tup);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgtls_admin is installed in database \"%s\" already", name),
				 errdetail("A cluster has one CA, one CRL and one registry of the certificates it issued; a second registry would undo the first one's revocations."),
				 errhint("Use the extension in database \"%s\", or drop it there first.", name)));
	}
	register_callback();
	claim_pending = true;
}

/* From the event trigger on a DROP: if the extension is gone at commit, so is the claim. */
void
pgtls_release_registry_if_dropped(void)
{
	register_callback();
	drop_pending = true;
}
