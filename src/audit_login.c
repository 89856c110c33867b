/*
 * audit_login.c
 *		pgtls_explain_login(): a certificate login, step by step, in the
 *		order the server takes them, with the server's words for the first
 *		step that fails.
 *
 * The order is PostgreSQL 15's: the TLS handshake (be_tls_open_server),
 * where the client certificate is verified in full before the startup
 * packet is even read, so a bad certificate breaks every pg_hba.conf line;
 * then ClientAuthentication (check_hba, the clientcert checks, the method,
 * CheckCertAuth with clientname= and map=); then InitPostgres (role,
 * walsender, database).  The certificate is verified the way OpenSSL's
 * server side does it (ssl_verify_cert_chain): the store the server builds
 * from ssl_ca_file, ssl_crl_file and ssl_crl_dir, purpose and trust
 * "ssl_client", the context's security level as the authentication level.
 * A recording callback lets every problem be listed; the first one is the
 * one the server stops at.
 */
#include "pgtls_audit.h"

#include <openssl/err.h>

#include "lib/stringinfo.h"
#include "libpq/libpq.h"
#include "postmaster/postmaster.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

static bool
is_set_ssl_ca(void)
{
	return ssl_ca_file != NULL && ssl_ca_file[0] != '\0';
}

typedef struct Explain
{
	List	   *steps;			/* PgtlsLoginStep * */
	const char *failed_at;		/* the first step that failed, or NULL */
	const char *failed_client;	/* what the client sees there */
	const char *failed_fix;
	bool		unknown;		/* a step before any failure could not be judged */
	const char *unknown_why;
} Explain;

/* Add a step.  After a failure the server never gets there: the step is shown as not reached. */
static void
add_step(Explain *ex, const char *step, int ok, char *detail, const char *client, const char *fix,
		 bool stops)
{
	PgtlsLoginStep *s = palloc0(sizeof(PgtlsLoginStep));

	s->step = step;
	s->ok = ok;
	s->detail = detail;
	if (ex->failed_at != NULL)
	{
		s->ok = -1;
		s->detail = psprintf("not reached: the server stops at \"%s\". On its own this step %s: %s",
							 ex->failed_at, ok == 1 ? "passes" : ok == 0 ? "fails" : "cannot be judged",
							 detail);
	}
	else if (ok == 0 && stops)
	{
		ex->failed_at = step;
		ex->failed_client = client;
		ex->failed_fix = fix;
	}
	else if (ok < 0 && !ex->unknown)
	{
		ex->unknown = true;
		ex->unknown_why = detail;
	}
	ex->steps = lappend(ex->steps, s);
}

/* ---------------------------------------------------------------------
 * The handshake's verification of the client certificate
 * --------------------------------------------------------------------- */
#define MAX_PROBLEMS 16

static int	nproblems;
static int	problem_err[MAX_PROBLEMS];
static int	problem_depth[MAX_PROBLEMS];

/* Record every problem and go on, so all of them can be listed; the server stops at the first. */
static int
record_problem(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && nproblems < MAX_PROBLEMS)
	{
		problem_err[nproblems] = X509_STORE_CTX_get_error(ctx);
		problem_depth[nproblems] = X509_STORE_CTX_get_error_depth(ctx);
		nproblems++;
	}
	return 1;
}

typedef enum VerifyStep
{
	V_CHAIN,
	V_PURPOSE,
	V_STRENGTH,
	V_REVOCATION,
	V_VALIDITY,
	V_NSTEPS
} VerifyStep;

static const char *const verify_step_names[V_NSTEPS] = {"chain", "purpose", "strength", "revocation", "validity"};

static VerifyStep
verify_step_of(int err)
{
	switch (err)
	{
		case X509_V_ERR_INVALID_PURPOSE:
			return V_PURPOSE;
		case X509_V_ERR_EE_KEY_TOO_SMALL:
		case X509_V_ERR_CA_KEY_TOO_SMALL:
		case X509_V_ERR_CA_MD_TOO_WEAK:
			return V_STRENGTH;
		case X509_V_ERR_UNABLE_TO_GET_CRL:
		case X509_V_ERR_CRL_SIGNATURE_FAILURE:
		case X509_V_ERR_CRL_NOT_YET_VALID:
		case X509_V_ERR_CRL_HAS_EXPIRED:
		case X509_V_ERR_CERT_REVOKED:
		case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
		case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
		case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
		case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
		case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
		case X509_V_ERR_DIFFERENT_CRL_SCOPE:
		case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
		case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
			return V_REVOCATION;
		case X509_V_ERR_CERT_NOT_YET_VALID:
		case X509_V_ERR_CERT_HAS_EXPIRED:
		case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
		case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
			return V_VALIDITY;
		default:
			return V_CHAIN;
	}
}

/* The alert a server sends for a verification error (ssl_x509err2alert, OpenSSL 3.0), as libpq prints it. */
static const char *
client_alert(int err)
{
	switch (err)
	{
		case X509_V_ERR_CERT_HAS_EXPIRED:
		case X509_V_ERR_CRL_HAS_EXPIRED:
			return "sslv3 alert certificate expired";
		case X509_V_ERR_CERT_REVOKED:
			return "sslv3 alert certificate revoked";
		case X509_V_ERR_INVALID_PURPOSE:
			return "sslv3 alert unsupported certificate";
		case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		case X509_V_ERR_CRL_SIGNATURE_FAILURE:
			return "tlsv1 alert decrypt error";
		case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		case X509_V_ERR_INVALID_CA:
		case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		case X509_V_ERR_UNABLE_TO_GET_CRL:
		case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
			return "tlsv1 alert unknown ca";
		case X509_V_ERR_APPLICATION_VERIFICATION:
			return "sslv3 alert handshake failure";
		case X509_V_ERR_OUT_OF_MEM:
		case X509_V_ERR_INVALID_CALL:
		case X509_V_ERR_STORE_LOOKUP:
		case X509_V_ERR_UNSPECIFIED:
			return "tlsv1 alert internal error";
		case X509_V_ERR_CA_KEY_TOO_SMALL:
		case X509_V_ERR_EC_KEY_EXPLICIT_PARAMS:
		case X509_V_ERR_CA_MD_TOO_WEAK:
		case X509_V_ERR_CERT_NOT_YET_VALID:
		case X509_V_ERR_CERT_REJECTED:
		case X509_V_ERR_CERT_UNTRUSTED:
		case X509_V_ERR_CRL_NOT_YET_VALID:
		case X509_V_ERR_EE_KEY_TOO_SMALL:
		case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
		case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
		case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
		case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
		case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
		case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
			return "sslv3 alert bad certificate";
		default:
			return "sslv3 alert certificate unknown";
	}
}

static const char *
verify_fix(int err)
{
	switch (verify_step_of(err))
	{
		case V_PURPOSE:
			return "Issue a client certificate whose extendedKeyUsage includes clientAuth (pgtls_issue_client() does); a serverAuth-only certificate cannot log in.";
		case V_STRENGTH:
			return "Issue a new certificate with an EC P-256 or RSA 2048-bit (or larger) key, signed with SHA-256 (pgtls_issue_client() does).";
		case V_REVOCATION:
			return err == X509_V_ERR_CERT_REVOKED ? "The certificate is revoked: issue a new one with pgtls_issue_client()." :
				"Publish a current CRL for every CA in ssl_ca_file (pgtls_crl() writes the pgtls_admin CA's) in ssl_crl_file or ssl_crl_dir, and reload; pgtls_hba_check() lists the CRL findings.";
		case V_VALIDITY:
			return err == X509_V_ERR_CERT_HAS_EXPIRED ? "The certificate has expired: renew it with pgtls_renew(serial) or issue a new one." :
				"The certificate is not valid yet: check the clocks of this server and of the issuing machine.";
		default:
			return "Issue the certificate from a CA in ssl_ca_file (pgtls_issue_client() does), and give the client the intermediate certificates in its sslcert file; or add the issuing CA to ssl_ca_file and reload.";
	}
}

/* The security level the server's context has (from the probe, else a context like it). */
static int
server_security_level(const PgtlsTlsProbe *p)
{
	SSL_CTX    *c;
	int			level;

	if (p->ctx != NULL)
		return p->security_level;
	c = SSL_CTX_new(TLS_server_method());
	if (c == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not create a TLS context");
	(void) SSL_CTX_set_cipher_list(c, SSLCipherSuites);
	level = SSL_CTX_get_security_level(c);
	SSL_CTX_free(c);
	pgtls_ossl_clear();
	return level;
}

static void
free_x509_stack_shallow(void *p)
{
	sk_X509_free(p);
}

static char *
describe_purpose(X509 *leaf)
{
	uint32_t	flags = X509_get_extension_flags(leaf);

	if (!(flags & EXFLAG_XKUSAGE))
		return pstrdup("no extendedKeyUsage: any purpose, client authentication included");
	return pstrdup("extendedKeyUsage allows client authentication");
}

static void
explain_verification(Explain *ex, List *certs, const PgtlsTlsProbe *p)
{
	X509	   *leaf = linitial(certs);
	X509_STORE *store = pgtls_server_client_store();
	X509_STORE_CTX *v;
	STACK_OF(X509) *sent;
	ListCell   *lc;
	int			level = server_security_level(p);
	int			first[V_NSTEPS];
	StringInfoData more[V_NSTEPS];
	int			i;
	char	   *ok_detail[V_NSTEPS];
	VerifyStep	stop;
	STACK_OF(X509) *chain;
	bool		crl_checking;

	if (store == NULL)
	{
		for (i = 0; i < V_NSTEPS; i++)
			add_step(ex, verify_step_names[i], -1,
					 pstrdup("the server cannot load ssl_ca_file, ssl_crl_file or ssl_crl_dir as they are now (pgtls_hba_check() says why); the running server verifies with what it loaded before"),
					 NULL, NULL, false);
		return;
	}
	crl_checking = (X509_VERIFY_PARAM_get_flags(X509_STORE_get0_param(store)) & X509_V_FLAG_CRL_CHECK) != 0;
	v = pgtls_own_store_ctx(X509_STORE_CTX_new());
	sent = pgtls_own(sk_X509_new_null(), free_x509_stack_shallow);
	if (v == NULL || sent == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not set up certificate verification");
	foreach(lc, certs)
		if (sk_X509_push(sent, lfirst(lc)) <= 0)
			pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not set up certificate verification");

	/* as ssl_verify_cert_chain() does on a server (ssl/ssl_cert.c, OpenSSL 3.0) */
	if (X509_STORE_CTX_init(v, store, leaf, sent) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not set up certificate verification");
	X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(v), level);
	X509_STORE_CTX_set_default(v, "ssl_client");
	if (p->ctx != NULL)
		X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(v), SSL_CTX_get0_param(p->ctx));
	X509_STORE_CTX_set_verify_cb(v, record_problem);
	nproblems = 0;
	(void) X509_verify_cert(v);
	pgtls_ossl_clear();

	for (i = 0; i < V_NSTEPS; i++)
	{
		first[i] = -1;
		initStringInfo(&more[i]);
	}
	for (i = 0; i < nproblems; i++)
	{
		VerifyStep s = verify_step_of(problem_err[i]);

		if (first[s] < 0)
			first[s] = i;
		else
			appendStringInfo(&more[s], "; also %s at depth %d",
							 X509_verify_cert_error_string(problem_err[i]), problem_depth[i]);
	}

	chain = X509_STORE_CTX_get0_chain(v);
	ok_detail[V_CHAIN] = chain != NULL && sk_X509_num(chain) > 0 ?
		psprintf("chains to the trusted \"%s\" (%d certificate%s)",
				 pgtls_name_text(X509_get_subject_name(sk_X509_value(chain, sk_X509_num(chain) - 1))),
				 sk_X509_num(chain), sk_X509_num(chain) == 1 ? "" : "s") :
		pstrdup("chains to a CA in ssl_ca_file");
	ok_detail[V_PURPOSE] = describe_purpose(leaf);
	{
		int			bits;
		char	   *key = X509_get0_pubkey(leaf) ? pgtls_key_type_of(X509_get0_pubkey(leaf), &bits) : pstrdup("unknown");

		ok_detail[V_STRENGTH] = psprintf("a %s key, signed with %s, accepted at security level %d",
										 key, OBJ_nid2ln(X509_get_signature_nid(leaf)), level);
	}
	ok_detail[V_REVOCATION] = crl_checking ?
		pstrdup("not revoked: every CA in the chain has a current CRL in ssl_crl_file or ssl_crl_dir") :
		pstrdup("not checked: neither ssl_crl_file nor ssl_crl_dir is set");
	ok_detail[V_VALIDITY] = psprintf("valid until %s",
									 timestamptz_to_str(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(leaf))));

	/* the server stops at the first problem OpenSSL reports */
	stop = nproblems > 0 ? verify_step_of(problem_err[0]) : V_NSTEPS;
	for (i = 0; i < V_NSTEPS; i++)
	{
		int			k = first[i];

		if (k < 0)
		{
			add_step(ex, verify_step_names[i], 1, ok_detail[i], NULL, NULL, true);
			continue;
		}
		add_step(ex, verify_step_names[i], 0,
				 psprintf("%s at depth %d (\"%s\")%s: %s",
						  X509_verify_cert_error_string(problem_err[k]), problem_depth[k],
						  chain != NULL && problem_depth[k] < sk_X509_num(chain) ?
						  pgtls_name_text(X509_get_subject_name(sk_X509_value(chain, problem_depth[k]))) :
						  pgtls_name_text(X509_get_subject_name(leaf)),
						  more[i].data,
						  (int) i == (int) stop ?
						  "the handshake fails before any pg_hba.conf line is looked at; the server logs \"could not accept SSL connection: certificate verify failed\"" :
						  "OpenSSL reports an earlier problem first"),
				 psprintf("SSL error: %s", client_alert(problem_err[k])), verify_fix(problem_err[k]),
				 (int) i == (int) stop);
	}
}

/* ---------------------------------------------------------------------
 * The steps
 * --------------------------------------------------------------------- */
static void
explain_tls(Explain *ex, const PgtlsTlsProbe **probe)
{
	const PgtlsTlsProbe *p;

	*probe = NULL;
	if (!EnableSSL)
	{
		add_step(ex, "tls", 0, pstrdup("ssl is off: the server answers no to TLS, so no certificate can be presented"),
				 "server does not support SSL, but SSL was required",
				 "Run SELECT pgtls_enable_ssl(); (or set ssl = on with ssl_cert_file and ssl_key_file) and reload.", true);
		return;
	}
	p = pgtls_tls_probe();
	*probe = p;
	if (p->passphrase_needed)
		add_step(ex, "tls", -1, pstrdup("the server's private key is encrypted, and this never runs ssl_passphrase_command: the handshake was not tried"),
				 NULL, NULL, false);
	else if (p->load_error != NULL)
		add_step(ex, "tls", -1, psprintf("the server cannot load its SSL configuration as it is now (%s); the running server uses what it loaded before, which this cannot see", p->load_error),
				 NULL, NULL, false);
	else if (!p->libpq.ok)
		add_step(ex, "tls", 0, psprintf("no handshake with a libpq 15 client: the server fails with \"%s\"", p->libpq.server_error),
				 psprintf("SSL error: %s", p->libpq.client_error[0] ? p->libpq.client_error : p->libpq.server_error),
				 "See the ssl.no_handshake finding of pgtls_hba_check().", true);
	else
		add_step(ex, "tls", 1, psprintf("a libpq 15 client negotiates %s with %s", p->libpq.version, p->libpq.cipher),
				 NULL, NULL, true);
}

static const char *
auth_failed_words(UserAuth method)
{
	switch (method)
	{
		case uaCert:
			return "certificate";
		case uaTrust:
			return "\"trust\"";
		case uaIdent:
			return "Ident";
		case uaPeer:
			return "Peer";
		case uaGSS:
			return "GSSAPI";
		case uaSSPI:
			return "SSPI";
		case uaPAM:
			return "PAM";
		case uaBSD:
			return "BSD";
		case uaLDAP:
			return "LDAP";
		case uaRADIUS:
			return "RADIUS";
		default:
			return "password";
	}
}

static void
explain_identity(Explain *ex, HbaLine *hba, int line, X509 *leaf, const char *role)
{
	X509_NAME  *subject = X509_get_subject_name(leaf);
	bool		cn_nul;
	bool		dn_nul;
	char	   *cn = pgtls_name_cn(subject, &cn_nul);
	char	   *dn = pgtls_name_dn(subject, &dn_nul);
	bool		by_dn = hba->clientcertname == clientCertDN;
	const char *field = by_dn ? "subject DN" : "CN";
	const char *name = by_dn ? dn : cn;
	char	   *shown = name ? pgtls_safe_text((const unsigned char *) name, strlen(name)) : NULL;
	PgtlsIdentFile *ident;
	int			ident_line;
	char	   *why;
	char	   *client = psprintf("FATAL:  %s authentication failed for user \"%s\"",
								  auth_failed_words(hba->auth_method), role);

	if (cn_nul || dn_nul)
	{
		add_step(ex, "identity", 0,
				 psprintf("the certificate's %s contains a NUL byte: the server drops the connection during the handshake",
						  cn_nul ? "common name" : "distinguished name"),
				 "server closed the connection unexpectedly",
				 "Issue a certificate whose names hold no NUL byte.", true);
		return;
	}
	if (!pgtls_hba_checks_cert_name(hba))
	{
		add_step(ex, "identity", 1,
				 psprintf("not compared: line %d %s", line,
						  hba->clientcert == clientCertCA ? "has clientcert=verify-ca, which checks the certificate but not its names" :
						  "does not look at the certificate"),
				 NULL, NULL, true);
		return;
	}
	ident = pgtls_ident_read();
	if (pgtls_hba_admits_identity(hba, ident, role, cn, dn, &ident_line, &why))
	{
		if (hba->usermap != NULL && hba->usermap[0] != '\0')
			add_step(ex, "identity", 1,
					 psprintf("the %s \"%s\" is mapped to role \"%s\" by map \"%s\", pg_ident.conf line %d%s",
							  field, shown, role, hba->usermap, ident_line,
							  pgtls_ident_changed_since_reload() ? " (pg_ident.conf changed after the last reload: the server uses the maps it loaded then)" : ""),
					 NULL, NULL, true);
		else
			add_step(ex, "identity", 1, psprintf("the %s \"%s\" equals the role name", field, shown), NULL, NULL, true);
		return;
	}
	add_step(ex, "identity", 0,
			 psprintf("line %d compares the certificate's %s \"%s\" with role \"%s\"%s; the server logs: %s%s",
					  line, field, shown ? shown : "", role,
					  hba->usermap ? psprintf(" through map \"%s\"", hba->usermap) : "", why,
					  ident->error ? psprintf(" (pg_ident.conf %s is invalid: the server keeps the maps it loaded before)", ident->error) : ""),
			 client,
			 hba->usermap ?
			 psprintf("Add a line to map \"%s\" in pg_ident.conf that maps \"%s\" to %s and reload, or issue a certificate the map admits with pgtls_issue_client(%s, subject => ...).",
					  hba->usermap, shown ? shown : "", quote_identifier(role), quote_literal_cstr(role)) :
			 by_dn ?
			 psprintf("With clientname=DN the whole subject DN must equal the role name: add map=<name> to line %d with a pg_ident.conf map from the DN to the role, or use clientname=CN.", line) :
			 psprintf("Issue a certificate for this role: SELECT * FROM pgtls_issue_client(%s);", quote_literal_cstr(role)),
			 true);
}

/*
 * pgtls_admin.enforce = registry: the ClientAuthentication_hook of
 * src/enforce.c, which runs after the server's own checks succeeded,
 * judged with the same shared set of live certificates and the same rules.
 */
static void
explain_registry(Explain *ex, HbaLine *hba, X509 *leaf, const char *role)
{
	PgtlsLiveVerdict verdict;
	char	   *serial = pgtls_serial_hex(X509_get0_serialNumber(leaf));
	char	   *why = NULL;
	const char *fix = "Issue the certificate with pgtls_issue_client() (it is recorded as live), or see pgtls_hba_check().";

	if (pgtls_enforce != PGTLS_ENFORCE_REGISTRY)
	{
		add_step(ex, "registry", 1, pstrdup("pgtls_admin.enforce is crl: the registry is not consulted at login"),
				 NULL, NULL, true);
		return;
	}
	if (hba->auth_method != uaCert && hba->clientcert == clientCertOff)
	{
		add_step(ex, "registry", 1, pstrdup("pgtls_admin.enforce = registry, but this line does not authenticate with the certificate"),
				 NULL, NULL, true);
		return;
	}
	why = pgtls_live_refusal(leaf, role, &verdict);
	switch (verdict)
	{
		case PGTLS_LIVE_UNAVAILABLE:
			fix = "Add pgtls_admin to shared_preload_libraries and restart, or set pgtls_admin.enforce = crl.";
			break;
		case PGTLS_LIVE_NO_REGISTRY:
		case PGTLS_LIVE_NOT_OURS:
			add_step(ex, "registry", 1,
					 pstrdup("pgtls_admin.enforce = registry applies only to certificates of the extension's CAs; the server's own checks decide this one"),
					 NULL, NULL, true);
			return;
		case PGTLS_LIVE_NOT_LOADED:
			fix = "Wait for the pgtls_admin worker to start (pg_stat_activity), or check the server log.";
			break;
		case PGTLS_LIVE_OVERFLOW:
			fix = "Wait a minute for the worker to reload the set, or raise pgtls_admin.max_certificates and restart.";
			break;
		default:
			break;
	}
	if (why == NULL)
	{
		add_step(ex, "registry", 1, psprintf("pgtls_admin.enforce = registry: certificate %s is live for this role", serial),
				 NULL, NULL, true);
		return;
	}
	add_step(ex, "registry", 0, psprintf("pgtls_admin.enforce = registry: %s", why),
			 psprintf("FATAL:  certificate authentication failed for user \"%s\"", role), fix, true);
}

static void
explain_method(Explain *ex, HbaLine *hba, int line)
{
	switch (hba->auth_method)
	{
		case uaCert:
			add_step(ex, "method", 1, psprintf("line %d: cert, the verified certificate is the credential", line), NULL, NULL, true);
			break;
		case uaTrust:
			add_step(ex, "method", 1, psprintf("line %d: trust", line), NULL, NULL, true);
			break;
		default:
			add_step(ex, "method", -1,
					 psprintf("line %d: %s, which also needs %s that this cannot check", line, hba_authname(hba->auth_method),
							  pgtls_hba_is_password_method(hba->auth_method) ? "the password" : "the client's credentials"),
					 NULL, NULL, true);
			break;
	}
}

static void
explain_hba_and_after(Explain *ex, X509 *leaf, PgtlsConnection *conn, const char *host, bool requested)
{
	PgtlsHbaFile *file = pgtls_hba_read();
	int			i = pgtls_hba_find(file, conn);
	HbaLine    *hba;
	int			line;
	PgtlsAfterAuth after;
	char	   *errors = file->nerrors > 0 ?
		psprintf(" (pg_hba.conf has %d invalid line%s, which the server ignores only while it keeps its previous rules)",
				 file->nerrors, file->nerrors == 1 ? "" : "s") : "";

	/* the startup packet asked for a walsender: InitProcess() wants a slot before authentication */
	pgtls_after_auth_checks(conn->role, conn->database, conn->physical_replication, &after);
	if (conn->physical_replication)
		add_step(ex, "walsender", after.walsender ? 0 : 1,
				 after.walsender ? pstrdup("max_wal_senders is 0: every replication connection is turned away before pg_hba.conf is looked at") :
				 pstrdup("max_wal_senders allows walsenders (whether one is free depends on the moment)"),
				 after.walsender ? psprintf("FATAL:  %s", after.walsender) : NULL,
				 "Set max_wal_senders (and wal_level = replica) and restart.", true);

	if (i < 0)
	{
		add_step(ex, "hba", 0, psprintf("no pg_hba.conf line matches a TLS connection from %s for this role and database%s", host, errors),
				 conn->physical_replication ?
				 psprintf("FATAL:  no pg_hba.conf entry for replication connection from host \"%s\", user \"%s\", SSL encryption", host, conn->role) :
				 psprintf("FATAL:  no pg_hba.conf entry for host \"%s\", user \"%s\", database \"%s\", SSL encryption", host, conn->role, conn->database),
				 "Add a line such as \"hostssl <database> <role> <address>/32 cert\" and reload.", true);
		return;
	}
	hba = file->rules[i].hba;
	line = file->rules[i].line;
	if (hba->auth_method == uaReject)
	{
		add_step(ex, "hba", 0, psprintf("line %d rejects it: %s%s", line, file->rules[i].raw, errors),
				 conn->physical_replication ?
				 psprintf("FATAL:  pg_hba.conf rejects replication connection for host \"%s\", user \"%s\", SSL encryption", host, conn->role) :
				 psprintf("FATAL:  pg_hba.conf rejects connection for host \"%s\", user \"%s\", database \"%s\", SSL encryption", host, conn->role, conn->database),
				 psprintf("Add a hostssl line with method cert for this role above line %d, and reload.", line), true);
		return;
	}
	add_step(ex, "hba", 1, psprintf("line %d: %s%s", line, file->rules[i].raw, errors), NULL, NULL, true);

	/* ClientAuthentication(): the clientcert checks come before the method */
	if (hba->clientcert != clientCertOff)
	{
		if (!is_set_ssl_ca())
			add_step(ex, "clientcert", 0,
					 psprintf("line %d needs a client certificate, but ssl_ca_file is not set", line),
					 "FATAL:  client certificates can only be checked if a root certificate store is available",
					 "Set ssl_ca_file to the CA that issues client certificates (SELECT pgtls_enable_ssl(); does) and reload.", true);
		else
			add_step(ex, "clientcert", 1,
					 psprintf("line %d needs a valid client certificate (%s)", line,
							  hba->auth_method == uaCert ? "method cert" :
							  hba->clientcert == clientCertCA ? "clientcert=verify-ca" : "clientcert=verify-full"),
					 NULL, NULL, true);
	}
	else
		add_step(ex, "clientcert", 1,
				 psprintf("line %d does not require a certificate%s", line,
						  requested ? " (it was still verified in the handshake)" : ""),
				 NULL, NULL, true);
	explain_method(ex, hba, line);
	explain_identity(ex, hba, line, leaf, conn->role);
	explain_registry(ex, hba, leaf, conn->role);

	add_step(ex, "role", after.role ? 0 : 1,
			 after.role ? psprintf("after authentication: %s", after.role) : psprintf("role \"%s\" exists and may log in", conn->role),
			 after.role ? psprintf("FATAL:  %s", after.role) : NULL,
			 after.role ? psprintf(OidIsValid(conn->roleid) ? "Run ALTER ROLE %s LOGIN;" : "Create the role: CREATE ROLE %s LOGIN;",
								   quote_identifier(conn->role)) : NULL, true);
	if (conn->physical_replication)
		add_step(ex, "replication", after.replication ? 0 : 1,
				 after.replication ? psprintf("after authentication: %s", after.replication) :
				 pstrdup("a physical replication connection (database \"replication\"): the role is a superuser or has REPLICATION"),
				 after.replication ? psprintf("FATAL:  %s", after.replication) : NULL,
				 after.replication ? psprintf("Run ALTER ROLE %s REPLICATION; if it should stream WAL.", quote_identifier(conn->role)) : NULL,
				 true);
	else
		add_step(ex, "database", after.database ? 0 : 1,
				 after.database ? psprintf("after authentication: %s", after.database) :
				 psprintf("database \"%s\" accepts connections from this role", conn->database),
				 after.database ? psprintf("FATAL:  %s", after.database) : NULL,
				 after.database ? pstrdup("Connect to a database that exists and accepts connections, and GRANT CONNECT ON DATABASE to the role if it lacks it.") : NULL,
				 true);
}

/*
 * The steps of a certificate login of role to database from address, with
 * the certificate (and the chain after it) the client sends; the last step
 * is the verdict.
 */
List *
pgtls_login_steps(List *certs, const char *role, const char *database, inet *address,
					const char *host)
{
	Explain		ex = {0};
	const PgtlsTlsProbe *probe;
	PgtlsConnection conn = {0};
	X509	   *leaf = linitial(certs);
	bool		requested = is_set_ssl_ca();
	PgtlsLoginStep *verdict = palloc0(sizeof(PgtlsLoginStep));

	explain_tls(&ex, &probe);
	if (requested)
		add_step(&ex, "certificate_requested", 1,
				 psprintf("ssl_ca_file \"%s\" is set, so the server asks for a client certificate and verifies it during the handshake", ssl_ca_file),
				 NULL, NULL, true);
	else
		add_step(&ex, "certificate_requested", 0,
				 pstrdup("ssl_ca_file is not set: the server does not ask for a client certificate, so the client sends none"),
				 NULL, NULL, false);
	if (requested && EnableSSL)
		explain_verification(&ex, certs, probe);
	else
	{
		int			i;

		for (i = 0; i < V_NSTEPS; i++)
			add_step(&ex, verify_step_names[i], -1, pstrdup("not checked: the certificate is not sent"), NULL, NULL, false);
	}

	conn.role = role;
	conn.roleid = get_role_oid(role, true);
	conn.database = database;
	conn.physical_replication = strcmp(database, "replication") == 0;
	conn.ssl = true;
	pgtls_connection_set_address(&conn, address);
	explain_hba_and_after(&ex, leaf, &conn, host, requested);

	verdict->step = "verdict";
	if (ex.failed_at != NULL)
	{
		verdict->ok = 0;
		verdict->detail = psprintf("refused at step \"%s\"; the client sees \"%s\". %s",
								   ex.failed_at, ex.failed_client ? ex.failed_client : "an error", ex.failed_fix ? ex.failed_fix : "");
	}
	else if (ex.unknown)
	{
		verdict->ok = -1;
		verdict->detail = psprintf("every step this can judge passes, but not all: %s", ex.unknown_why);
	}
	else
	{
		verdict->ok = 1;
		verdict->detail = psprintf("the login succeeds: role \"%s\" connects to %s with this certificate", role,
								   conn.physical_replication ? "stream WAL (physical replication)" : psprintf("database \"%s\"", database));
	}
	ex.steps = lappend(ex.steps, verdict);
	return ex.steps;
}
