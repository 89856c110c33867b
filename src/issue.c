/*
 * issue.c
 *		Issuing client and server certificates: the CA is loaded first (and
 *		must be the registry's active CA), so nothing is generated when it is
 *		unusable, and every certificate is recorded in the registry before
 *		it is returned.
 */
#include "pgtls_ops.h"

/*
 * Record a certificate just built, before it can leave the server: in the
 * issuance journal (durable whatever becomes of this transaction) and the
 * registry, and, for a client certificate, in the shared set of live ones
 * when this transaction commits; listeners hear of it at commit.
 */
static void
recorded(PgtlsIssued *out, const char *kind, const char *role_name, Oid role_oid,
		 const char *key_type)
{
	char	   *serial = pgtls_serial_hex(X509_get0_serialNumber(out->cert));

	out->cert_pem = pgtls_registry_insert(out->cert, kind, role_name, role_oid, key_type,
										  out->ca.fingerprint);
	pgtls_journal_issued(serial, out->cert_pem, kind[0], role_oid);
	pgtls_notify_issued(out->cert, kind, role_name);
	if (strcmp(kind, "client") == 0)
		pgtls_live_at_commit(serial, true, role_oid,
							 pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(out->cert)),
							 pgtls_fingerprint_sha256(out->cert));
}

/*
 * With registry-enforced logins, a client certificate the shared set of
 * live ones has no room for would lock every certificate login out: refuse
 * to issue it instead.
 */
static void
require_live_room(void)
{
	if (pgtls_enforce == PGTLS_ENFORCE_REGISTRY && !pgtls_live_has_room(1))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("the registry holds pgtls_admin.max_certificates (%d) live client certificates already",
						pgtls_max_certificates),
				 errdetail("With pgtls_admin.enforce = registry every live client certificate must fit in the shared set the login check reads."),
				 errhint("Revoke certificates that are no longer used, or raise pgtls_admin.max_certificates and restart.")));
}

/* A new key and a client certificate for role_name, whose OID is role_oid. */
void
pgtls_issue_client_cert(const char *role_name, Oid role_oid, PgtlsLifetime lifetime,
						PgtlsKeyType key_type, PgtlsIssued *out)
{
	pgtls_issue_client_cert_as(role_name, role_oid, NULL, lifetime, key_type, out);
}

/* The same with another subject than CN = role_name (NULL: that one). */
void
pgtls_issue_client_cert_as(const char *role_name, Oid role_oid, const X509_NAME *subject,
						   PgtlsLifetime lifetime, PgtlsKeyType key_type, PgtlsIssued *out)
{
	if (subject == NULL)
		pgtls_check_role_cn(role_name);
	require_live_room();
	pgtls_ca_load(&out->ca);
	pgtls_ca_require_active(&out->ca);
	out->key = pgtls_generate_key(key_type);
	out->cert = pgtls_build_client_cert_as(role_name, subject, lifetime, out->key, out->ca.cert, out->ca.key);
	recorded(out, "client", role_name, role_oid, pgtls_key_type_name(key_type));
}

/*
 * A client certificate for the key of a request whose CN is role_name; only
 * that key and CN are taken from it.
 */
void
pgtls_issue_csr_cert(const char *role_name, Oid role_oid, const char *csr, int csr_len,
					 PgtlsLifetime lifetime, PgtlsIssued *out)
{
	pgtls_issue_csr_cert_as(role_name, role_oid, NULL, csr, csr_len, lifetime, out);
}

/* The same with another subject than CN = role_name (NULL: that one). */
void
pgtls_issue_csr_cert_as(const char *role_name, Oid role_oid, const X509_NAME *subject,
						const char *csr, int csr_len, PgtlsLifetime lifetime, PgtlsIssued *out)
{
	X509_REQ   *req = pgtls_parse_csr(csr, csr_len, role_name);

	require_live_room();
	pgtls_ca_load(&out->ca);
	pgtls_ca_require_active(&out->ca);
	out->key = NULL;
	out->cert = pgtls_build_client_cert_as(role_name, subject, lifetime, X509_REQ_get0_pubkey(req),
										   out->ca.cert, out->ca.key);
	recorded(out, "client", role_name, role_oid, NULL);
}

/* A new server key and certificate for these names; the caller is a superuser. */
void
pgtls_issue_server_cert(List *dns_names, List *addresses, PgtlsLifetime lifetime,
						PgtlsKeyType key_type, PgtlsIssued *out)
{
	pgtls_check_server_names(dns_names, addresses);
	pgtls_ca_load(&out->ca);
	pgtls_ca_require_active(&out->ca);
	out->key = pgtls_generate_key(key_type);
	out->cert = pgtls_build_server_cert(dns_names, addresses, lifetime, out->key,
										out->ca.cert, out->ca.key);
	recorded(out, "server", NULL, InvalidOid, NULL);
}
