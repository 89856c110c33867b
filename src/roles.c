/*
 * roles.c
 *		Who may obtain a certificate for which role.
 *
 * A superuser may issue for any login role.  Anyone else who was granted
 * EXECUTE needs ADMIN OPTION on the target role, which is what it takes to
 * manage that role's membership anyway, and can never issue for a role that
 * is superuser, replication or bypassrls: such a certificate would be a
 * privilege escalation.
 */
#include "pgtls_stores.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

void
pgtls_require_superuser(const char *action)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", action),
				 errdetail("Only superusers may %s.", action)));
}

/*
 * Non-superusers act on a role's certificates only with ADMIN OPTION on it,
 * never on their own, and never on superuser, replication or bypassrls roles.
 */
static void
check_manage(const char *name, Oid roleid, bool privileged, const char *action)
{
	if (superuser())
		return;
	if (privileged)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s role \"%s\"", action, name),
				 errdetail("Only superusers may manage certificates of superuser, replication or bypassrls roles.")));
	/* is_admin_of_role() lets a session user administer itself; we do not */
	if (roleid == GetUserId())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s role \"%s\"", action, name),
				 errdetail("A role cannot manage its own certificates."),
				 errhint("Ask a superuser, or a role with ADMIN OPTION on %s.", quote_identifier(name))));
	if (!is_admin_of_role(GetUserId(), roleid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s role \"%s\"", action, name),
				 errdetail("Managing a role's certificates requires ADMIN OPTION on that role."),
				 errhint("A superuser can run GRANT %s TO %s WITH ADMIN OPTION.",
						 quote_identifier(name),
						 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
}

/*
 * Validate the role a certificate is requested for and return its OID.
 * The checks run before any key is generated or file read.
 */
Oid
pgtls_check_issue_target(NameData *role, bool role_isnull)
{
	HeapTuple	tuple;
	Form_pg_authid form;
	Oid			roleid;
	bool		privileged;
	const char *name;

	if (role_isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role must not be null")));
	name = NameStr(*role);

	tuple = SearchSysCache1(AUTHNAME, CStringGetDatum(name));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", name)));
	form = (Form_pg_authid) GETSTRUCT(tuple);
	roleid = form->oid;
	privileged = form->rolsuper || form->rolreplication || form->rolbypassrls;
	if (!form->rolcanlogin)
	{
		ReleaseSysCache(tuple);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role \"%s\" cannot log in", name),
				 errdetail("A client certificate is only useful for a role with the LOGIN attribute."),
				 errhint("Run ALTER ROLE %s LOGIN first, or issue for another role.",
						 quote_identifier(name))));
	}
	ReleaseSysCache(tuple);
	check_manage(name, roleid, privileged, "issue a certificate for");
	return roleid;
}

/*
 * May the current user revoke a certificate issued for the role whose OID
 * was role_oid and whose name was role_name (NULL: a server certificate)?
 * The rule of issuing, without the LOGIN requirement: access must be
 * removable from a role that can no longer log in, or was dropped.  The
 * role is found by its OID, so a renamed role's certificates stay with it;
 * by name only for rows that predate the OID.
 */
void
pgtls_check_revoke_target(const char *role_name, Oid role_oid)
{
	HeapTuple	tuple;
	Form_pg_authid form;
	Oid			roleid;
	bool		privileged;
	char	   *name;

	if (superuser())
		return;
	if (role_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to revoke a server certificate"),
				 errdetail("Only superusers may revoke server certificates.")));
	tuple = OidIsValid(role_oid) ? SearchSysCache1(AUTHOID, ObjectIdGetDatum(role_oid)) :
		SearchSysCache1(AUTHNAME, CStringGetDatum(role_name));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to revoke a certificate of role \"%s\"", role_name),
				 errdetail("The role no longer exists; only superusers may revoke its certificates.")));
	form = (Form_pg_authid) GETSTRUCT(tuple);
	roleid = form->oid;
	name = pstrdup(NameStr(form->rolname));
	privileged = form->rolsuper || form->rolreplication || form->rolbypassrls;
	ReleaseSysCache(tuple);
	check_manage(name, roleid, privileged, "revoke a certificate of");
}

/* Does the role exist and have LOGIN? */
bool
pgtls_role_can_login(Oid roleid)
{
	HeapTuple	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(roleid));
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	result = ((Form_pg_authid) GETSTRUCT(tup))->rolcanlogin;
	ReleaseSysCache(tup);
	return result;
}
