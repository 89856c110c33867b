/*
 * renew.c
 *		A new key and certificate like an existing one: the same subject,
 *		kind and key type, and for a server the same names.
 */
#include "pgtls_ops.h"

#include "utils/builtins.h"
#include "utils/inet.h"

/* The key type to renew with: the old one where it is one we issue. */
static PgtlsKeyType
renewal_key_type(const char *old)
{
	PgtlsKeyType type;

	if (pgtls_key_type_lookup(old, &type))
		return type;
	return (PgtlsKeyType) pgtls_default_key_type;
}

/* Server renewal: the same names, rebuilt from the registry's SAN entries. */
static void
renew_server(const PgtlsRegistryRow *row, PgtlsLifetime lifetime, PgtlsKeyType key_type,
			 PgtlsIssued *out)
{
	List	   *dns = NIL;
	List	   *ips = NIL;
	ListCell   *lc;

	pgtls_require_superuser("renew server certificates");
	foreach(lc, row->san)
	{
		char	   *entry = lfirst(lc);

		if (strncmp(entry, "DNS:", 4) == 0)
			dns = lappend(dns, entry + 4);
		else if (strncmp(entry, "IP:", 3) == 0)
			ips = lappend(ips, DatumGetInetPP(DirectFunctionCall1(inet_in, CStringGetDatum(entry + 3))));
	}
	pgtls_issue_server_cert(dns, ips, lifetime, key_type, out);
}

/*
 * Record that out renews previous, and tell listeners (after the "issued"
 * of the new certificate).
 */
void
pgtls_renewal_recorded(const char *previous, PgtlsIssued *out, const char *kind, const char *role)
{
	pgtls_registry_record_renewal(pgtls_serial_hex(X509_get0_serialNumber(out->cert)), previous);
	pgtls_notify_renewed(out->cert, previous, kind, role);
}

/*
 * Renew the server certificate serial, whose registry row is row, with its
 * names and key type.  Superuser only.  Unlike pgtls_renew_cert() this takes
 * a revoked one too: pgtls_maintain() replaces a served certificate that
 * was revoked.
 */
void
pgtls_renew_server(const char *serial, const PgtlsRegistryRow *row, PgtlsLifetime lifetime,
				   PgtlsIssued *out)
{
	renew_server(row, lifetime, renewal_key_type(row->key_type), out);
	pgtls_renewal_recorded(serial, out, "server", NULL);
}

/*
 * The subject to renew a client certificate with: NULL for the default
 * CN = role, else the one it was issued with (pgtls_issue_client's subject).
 */
X509_NAME *
pgtls_renewal_subject(const PgtlsRegistryRow *row)
{
	if (strcmp(pgtls_name_text(pgtls_role_subject_name(row->role)), row->subject) == 0)
		return NULL;
	return pgtls_subject_name(row->subject);
}

/* Renew the certificate with this (normalized) serial into out. */
void
pgtls_renew_cert(const char *serial, PgtlsLifetime lifetime, PgtlsIssued *out)
{
	PgtlsRegistryRow row;
	PgtlsKeyType key_type;

	if (!pgtls_registry_lookup(serial, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no certificate with serial %s was issued here", serial)));
	if (strcmp(row.kind, "ca") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("serial %s is a CA certificate", serial),
				 errhint("Replace the CA with pgtls_init_ca(replace => true).")));
	if (row.revoked)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate %s is revoked and cannot be renewed", serial),
				 errhint("Issue a new certificate instead.")));
	key_type = renewal_key_type(row.key_type);
	if (strcmp(row.kind, "client") == 0)
	{
		NameData	role;
		Oid			roleid;

		namestrcpy(&role, row.role);
		roleid = pgtls_check_issue_target(&role, false);
		if (OidIsValid(row.role_oid) && roleid != row.role_oid)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("role \"%s\" was dropped and created again since certificate %s was issued",
							row.role, serial),
					 errdetail("The certificate was issued for the role with OID %u; the role of that name now has OID %u.",
							   row.role_oid, roleid),
					 errhint("Revoke it, and issue a certificate for the new role with pgtls_issue_client() if it should have one.")));
		pgtls_issue_client_cert_as(row.role, roleid, pgtls_renewal_subject(&row), lifetime, key_type, out);
		pgtls_renewal_recorded(serial, out, "client", row.role);
	}
	else
		pgtls_renew_server(serial, &row, lifetime, out);
}
