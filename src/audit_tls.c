/*
 * audit_tls.c
 *		The audit of the ssl settings, the files they name, and the
 *		extension's own CA and registry.
 *
 * Files are judged as they are on disk now, named by the current settings:
 * that is what the next reload or restart loads, even when the running
 * server kept an older SSL context because its last reload was rejected.
 * Besides our own checks, the server's own loader (be_tls_init) is run on
 * them with its log output captured, so "the server will refuse this" is
 * the server's verdict in the server's words.  Nothing read from a key file
 * ever reaches a message.
 */
#include "pgtls_audit.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "commands/user.h"
#include "common/username.h"
#include "lib/stringinfo.h"
#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#define SECS_PER_DAY_F 86400.0

static void
setting_finding(PgtlsAudit *audit, PgtlsSeverity sev, const char *id, const char *setting,
				char *message, char *hint)
{
	const char *file;
	int			line;

	pgtls_setting_source(setting, &file, &line);
	pgtls_finding(audit, sev, id, file, line, NULL, message, hint);
}

static bool
is_set(const char *value)
{
	return value != NULL && value[0] != '\0';
}

/* ---------------------------------------------------------------------
 * ssl_ciphers by name, only to say which weak families a string names
 * when OpenSSL offers none of them: what is really offered comes from
 * handshakes with the server's own context (check_negotiation).
 * --------------------------------------------------------------------- */
static const char *const weak_families[] = {
	"NULL", "eNULL", "aNULL", "ADH", "AECDH", "EXP", "EXPORT", "EXPORT40", "EXPORT56",
	"LOW", "DES", "3DES", "RC4", "RC2", "MD5", "IDEA", "SEED", "COMPLEMENTOFALL",
	"COMPLEMENTOFDEFAULT", "aDSS", "DSS"
};

static int
weak_family(const char *part)
{
	int			i;

	for (i = 0; i < (int) lengthof(weak_families); i++)
		if (strcmp(part, weak_families[i]) == 0)
			return i;
	return -1;
}

/* The weak families a cipher string names and does not take away again, or NULL. */
static char *
named_weak_families(const char *suites)
{
	bool		on[lengthof(weak_families)] = {false};
	bool		banned[lengthof(weak_families)] = {false};
	char	   *copy = pstrdup(suites);
	char	   *tok;
	char	   *save = NULL;
	StringInfoData buf;
	int			i;

	for (tok = strtok_r(copy, ": ,;", &save); tok; tok = strtok_r(NULL, ": ,;", &save))
	{
		char		op = (tok[0] == '!' || tok[0] == '-' || tok[0] == '+') ? tok[0] : 0;
		char	   *part;
		char	   *save2 = NULL;
		char	   *body = pstrdup(op ? tok + 1 : tok);

		if (op == '+')
			continue;			/* only reorders */
		for (part = strtok_r(body, "+-_@", &save2); part; part = strtok_r(NULL, "+-_@", &save2))
		{
			int			f = weak_family(part);

			if (f < 0)
				continue;
			if (op == '!')
				banned[f] = true, on[f] = false;
			else if (op == '-')
				on[f] = false;
			else if (!banned[f])
				on[f] = true;
		}
	}
	initStringInfo(&buf);
	for (i = 0; i < (int) lengthof(weak_families); i++)
		if (on[i])
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", weak_families[i]);
	return buf.len ? buf.data : NULL;
}

void
pgtls_audit_settings(PgtlsAudit *audit)
{
	if (!EnableSSL)
		setting_finding(audit, PGTLS_SEV_HIGH, "ssl.off", "ssl",
						pstrdup("ssl is off: every TCP connection, passwords included, travels unencrypted and no client certificate can be used"),
						pstrdup("Run SELECT pgtls_enable_ssl(); (or set ssl = on with ssl_cert_file and ssl_key_file) and reload."));
	if (Password_encryption == PASSWORD_TYPE_MD5)
		setting_finding(audit, PGTLS_SEV_MEDIUM, "auth.password_encryption_md5", "password_encryption",
						pstrdup("password_encryption is md5: new passwords are stored as weak MD5 hashes"),
						pstrdup("Set password_encryption = 'scram-sha-256', reload, and have roles set their passwords again."));
	if (is_set(ssl_passphrase_command) && !ssl_passphrase_command_supports_reload)
		setting_finding(audit, PGTLS_SEV_MEDIUM, "ssl.passphrase_command", "ssl_passphrase_command_supports_reload",
						pstrdup("ssl_passphrase_command is set but ssl_passphrase_command_supports_reload is off: every reload that must load an encrypted key fails"),
						pstrdup("Set ssl_passphrase_command_supports_reload = on if the command can run without a terminal, or use an unencrypted key file with mode 0600."));
}

/* ---------------------------------------------------------------------
 * What the server negotiates: handshakes with its own context
 * --------------------------------------------------------------------- */
static const char *
group_name(int nid)
{
	const char *name;

	if (nid == NID_undef)
		return "no elliptic-curve or finite-field group (RSA key exchange)";
	name = OBJ_nid2sn(nid & ~TLSEXT_nid_unknown);
	return (nid & TLSEXT_nid_unknown) || name == NULL ? psprintf("group 0x%04x", nid & 0xFFFF) : name;
}

static const char *
version_setting(const char *name)
{
	const char *v = GetConfigOption(name, false, false);

	return (v == NULL || v[0] == '\0') ? "unset" : v;
}

/* No handshake with a libpq client: say what fails, and what it does to clients. */
static void
check_no_handshake(PgtlsAudit *audit, const PgtlsTlsProbe *p)
{
	StringInfoData msg;
	const char *hint;
	const char *setting;
	int			v;

	initStringInfo(&msg);
	appendStringInfo(&msg, "no TLS handshake succeeds with a libpq 15 client: the server fails with \"%s\" (ssl_min_protocol_version %s, ssl_max_protocol_version %s, ssl_ecdh_curve %s)",
					 p->libpq.server_error, version_setting("ssl_min_protocol_version"),
					 version_setting("ssl_max_protocol_version"), SSLECDHCurve);
	for (v = 0; v < PGTLS_NVERSIONS; v++)
		if (p->pinned[v].ok)
		{
			appendStringInfo(&msg, "; only a client limited to %s gets through (%s)",
							 pgtls_tls_version_names[v], p->pinned[v].cipher);
			break;
		}
	appendStringInfoString(&msg, ". Clients with sslmode=prefer (libpq's default) silently connect without TLS wherever a host or hostnossl line lets them; sslmode=require and stricter cannot connect");
	if (ssl_max_protocol_version != PG_TLS_ANY && ssl_max_protocol_version < PG_TLS1_2_VERSION)
	{
		setting = "ssl_max_protocol_version";
		hint = "Allow TLS 1.2 and 1.3: set ssl_min_protocol_version = 'TLSv1.2', reset ssl_max_protocol_version, and reload.";
	}
	else if (strstr(p->libpq.server_error, "key share") != NULL || strstr(p->libpq.server_error, "curve") != NULL)
	{
		setting = "ssl_ecdh_curve";
		hint = "Set ssl_ecdh_curve = 'prime256v1' (the default) and reload: clients offer only X25519, P-256, X448, P-521 and P-384.";
	}
	else
	{
		setting = "ssl_ciphers";
		hint = "Reset ssl_ciphers, ssl_ecdh_curve, ssl_min_protocol_version and ssl_max_protocol_version to their defaults, reload, and check this audit again.";
	}
	setting_finding(audit, PGTLS_SEV_CRITICAL, "ssl.no_handshake", setting, msg.data, pstrdup(hint));
}

static void
check_versions(PgtlsAudit *audit, const PgtlsTlsProbe *p)
{
	int			tls12 = 2;

	if (p->pinned[0].ok || p->pinned[1].ok)
	{
		int			v = p->pinned[0].ok ? 0 : 1;

		setting_finding(audit, PGTLS_SEV_HIGH, "ssl.min_protocol", "ssl_min_protocol_version",
						psprintf("the server really offers %s%s: a client limited to %s negotiated %s; TLS 1.0 and 1.1 are broken and deprecated",
								 pgtls_tls_version_names[v], p->pinned[1].ok && v == 0 ? " and TLSv1.1" : "",
								 pgtls_tls_version_names[v], p->pinned[v].cipher),
						pstrdup("Set ssl_min_protocol_version = 'TLSv1.2' (or TLSv1.3) and reload."));
	}
	else if (ssl_min_protocol_version != PG_TLS_ANY && ssl_min_protocol_version < PG_TLS1_2_VERSION)
		setting_finding(audit, PGTLS_SEV_LOW, "ssl.min_protocol", "ssl_min_protocol_version",
						psprintf("ssl_min_protocol_version is %s, but OpenSSL refuses TLS 1.0 and 1.1 at security level %d (a TLS 1.0 client gets \"%s\"), so nothing below TLS 1.2 is offered",
								 version_setting("ssl_min_protocol_version"), p->security_level,
								 p->pinned[0].server_error),
						pstrdup("Set ssl_min_protocol_version = 'TLSv1.2' so that a lower security level cannot bring TLS 1.0 back, and reload."));

	/* TLS 1.2 allowed by the range, yet impossible */
	if (!p->pinned[tls12].ok &&
		(p->min_version == 0 || p->min_version <= TLS1_2_VERSION) &&
		(p->max_version == 0 || p->max_version >= TLS1_2_VERSION))
		setting_finding(audit, PGTLS_SEV_MEDIUM, "ssl.tls12_unavailable", "ssl_ciphers",
						psprintf("TLS 1.2 is allowed but no TLS 1.2 handshake succeeds (the server fails with \"%s\"): only TLS 1.3 clients can connect, so drivers built on older TLS libraries cannot",
								 p->pinned[tls12].server_error),
						pstrdup("Set ssl_ciphers to suites TLS 1.2 clients share, such as the default 'HIGH:MEDIUM:+3DES:!aNULL', or set ssl_min_protocol_version = 'TLSv1.3' if that is intended."));
}

static void
check_suites(PgtlsAudit *audit, const PgtlsTlsProbe *p)
{
	static const struct
	{
		PgtlsSeverity severity;
		const char *what;
	}			classes[PGTLS_NWEAK] = {
		[PGTLS_WEAK_NULL] = {PGTLS_SEV_CRITICAL, "suites without encryption"},
		[PGTLS_WEAK_ANON] = {PGTLS_SEV_HIGH, "anonymous suites, which authenticate no server, so a man in the middle needs no certificate"},
		[PGTLS_WEAK_LEGACY] = {PGTLS_SEV_HIGH, "legacy suites (RC4, DES, 3DES, RC2, MD5 or under 128-bit keys)"},
	};
	bool		offered = false;
	char	   *named;
	int			w;

	for (w = 0; w < PGTLS_NWEAK; w++)
	{
		if (!p->weak[w].ok)
			continue;
		offered = true;
		setting_finding(audit, classes[w].severity, "ssl.weak_ciphers", "ssl_ciphers",
						psprintf("the server really offers %s: a client offering only those negotiated %s (%s); ssl_ciphers is '%s'",
								 classes[w].what, p->weak[w].cipher, p->weak[w].version, SSLCipherSuites),
						pstrdup("Set ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL' (the default) or stricter, and reload."));
	}
	named = named_weak_families(SSLCipherSuites);
	if (!offered && named != NULL)
		setting_finding(audit, PGTLS_SEV_LOW, "ssl.weak_ciphers", "ssl_ciphers",
						psprintf("ssl_ciphers names %s, but OpenSSL offers none of those suites here (security level %d%s): all %d suites the server can negotiate are strong",
								 named, p->security_level,
								 p->library_has_legacy ? "" : "; this OpenSSL build has no RC4, DES or 3DES suites at all",
								 p->nsuites),
						pstrdup("Remove the weak names from ssl_ciphers so that another OpenSSL build or security level cannot enable them."));
}

static void
check_level_and_curve(PgtlsAudit *audit, const PgtlsTlsProbe *p)
{
	int			nid = OBJ_sn2nid(SSLECDHCurve);

	if (p->security_level < 2)
		setting_finding(audit, PGTLS_SEV_MEDIUM, "ssl.security_level", "ssl_ciphers",
						psprintf("the server's OpenSSL security level is %d (%s): client certificates signed with SHA-1 or with RSA keys under 2048 bits are accepted, and weaker suites and key exchanges are allowed",
								 p->security_level,
								 strstr(SSLCipherSuites, "@SECLEVEL") ? "set by @SECLEVEL in ssl_ciphers" : "the system's OpenSSL configuration"),
						pstrdup("Remove @SECLEVEL from ssl_ciphers (security level 2 is the default) and reload."));
	if (p->libpq.ok && nid != NID_undef && (p->libpq.group & ~TLSEXT_nid_unknown) != nid)
		setting_finding(audit, PGTLS_SEV_LOW, "ssl.ecdh_curve", "ssl_ecdh_curve",
						psprintf("ssl_ecdh_curve = '%s' is not what clients get: a libpq 15 client negotiated %s with %s (OpenSSL refuses that curve for TLS or clients do not offer it)",
								 SSLECDHCurve, p->libpq.cipher, group_name(p->libpq.group)),
						pstrdup("Set ssl_ecdh_curve = 'prime256v1' (the default) or 'secp384r1', and reload."));
}

/* Judge protocols, suites and groups by handshakes with the server's own context. */
static void
check_negotiation(PgtlsAudit *audit, const PgtlsTlsProbe *p)
{
	if (!p->libpq.ok)
	{
		check_no_handshake(audit, p);
		return;
	}
	check_versions(audit, p);
	check_suites(audit, p);
	check_level_and_curve(audit, p);
}

/* ---------------------------------------------------------------------
 * Reading files without throwing: each problem is a finding.
 * --------------------------------------------------------------------- */
typedef struct AuditFile
{
	const char *setting;		/* GUC that names it, for messages */
	char	   *path;
	struct stat st;
	char	   *data;
	size_t		len;
} AuditFile;

static bool
read_audit_file(PgtlsAudit *audit, AuditFile *f, const char *setting, const char *value,
				bool secret, PgtlsSeverity sev)
{
	PgtlsFileRead r;

	memset(f, 0, sizeof(*f));
	f->setting = setting;
	f->path = pgtls_resolve_path(value);
	audit->files_checked++;
	if (!pgtls_try_read_file(f->path, secret, &r))
	{
		bool		missing = !r.opened && r.save_errno == ENOENT;
		char	   *why;

		if (r.problem != NULL)
			why = psprintf("%s", r.problem);
		else if (missing)
			why = pstrdup("does not exist");
		else
			why = psprintf("cannot be read: %s", strerror(r.save_errno));
		pgtls_finding(audit, sev, missing ? "file.missing" : "file.unreadable",
					  f->path, 0, NULL,
					  psprintf("%s names \"%s\", which %s", setting, f->path, why),
					  missing ?
					  psprintf("Put the file there, or point %s at the right file, then reload.", setting) :
					  r.problem != NULL ? psprintf("Point %s at a PEM file.", setting) :
					  psprintf("Make \"%s\" readable by the database server's operating-system user.", f->path));
		return false;
	}
	f->st = r.st;
	f->data = r.data;
	f->len = r.len;
	return true;
}

/* Every PEM certificate in a file, in order. */
static List *
read_certs(const AuditFile *f)
{
	return pgtls_read_cert_list(f->data, (int) f->len);
}

static void
invalid_file(PgtlsAudit *audit, const AuditFile *f, PgtlsSeverity sev, const char *what)
{
	pgtls_finding(audit, sev, "file.invalid", f->path, 0, NULL,
				  psprintf("%s \"%s\" holds no %s", f->setting, f->path, what),
				  psprintf("Replace \"%s\" with a PEM %s.", f->path, what));
}

/* ---------------------------------------------------------------------
 * Certificates
 * --------------------------------------------------------------------- */
typedef enum CertRole
{
	CERT_SERVER,				/* the leaf in ssl_cert_file */
	CERT_CHAIN,					/* intermediates in ssl_cert_file */
	CERT_TRUSTED,				/* a CA in ssl_ca_file */
	CERT_OUR_CA					/* pgtls_admin.ca_cert_file */
} CertRole;

static const char *const role_words[] = {
	"server certificate", "intermediate certificate", "CA certificate", "pgtls_admin CA certificate"
};

static bool
self_signed(X509 *cert)
{
	return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
}

static void
check_validity(PgtlsAudit *audit, const char *path, X509 *cert, CertRole role, const char *subject)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz nb = pgtls_asn1_time_to_timestamptz(X509_get0_notBefore(cert));
	TimestampTz na = pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(cert));
	double		left = (double) (na - now) / USECS_PER_SEC / SECS_PER_DAY_F;
	double		span = (double) (na - nb) / USECS_PER_SEC / SECS_PER_DAY_F;
	const char *word = role_words[role];
	bool		ours = (role == CERT_OUR_CA);
	const char *renew = role == CERT_SERVER ?
		"Run SELECT pgtls_enable_ssl(); to issue and install a new server certificate." :
		ours ? "Make a new CA with SELECT pgtls_init_ca(replace => true); then issue new certificates from it." :
		"Replace it with a current certificate from its issuer.";

	if (now > na)
		pgtls_finding(audit, role == CERT_TRUSTED ? PGTLS_SEV_HIGH : PGTLS_SEV_CRITICAL,
					  ours ? "ca.expired" : "cert.expired", path, 0, NULL,
					  psprintf("%s \"%s\" expired on %s", word, subject, timestamptz_to_str(na)),
					  pstrdup(renew));
	else if (now < nb)
		pgtls_finding(audit, PGTLS_SEV_HIGH, "cert.not_yet_valid", path, 0, NULL,
					  psprintf("%s \"%s\" is not valid before %s", word, subject, timestamptz_to_str(nb)),
					  pstrdup("Check the clock of this machine and of the machine that issued it."));
	else if (left <= pgtls_expiry_warning_days)
		pgtls_finding(audit, role == CERT_TRUSTED ? PGTLS_SEV_MEDIUM : PGTLS_SEV_HIGH,
					  ours ? "ca.expiring" : "cert.expiring", path, 0, NULL,
					  psprintf("%s \"%s\" expires in %.0f days, on %s (pgtls_admin.expiry_warning_days = %d)",
							   word, subject, left, timestamptz_to_str(na), pgtls_expiry_warning_days),
					  pstrdup(renew));

	if (role == CERT_SERVER && span > pgtls_max_days + 1)
		pgtls_finding(audit, PGTLS_SEV_LOW, "cert.validity_too_long", path, 0, NULL,
					  psprintf("server certificate \"%s\" is valid for %.0f days, more than pgtls_admin.max_days (%d)",
							   subject, span, pgtls_max_days),
					  pstrdup("Issue server certificates for at most pgtls_admin.max_days days: SELECT pgtls_enable_ssl();"));
	if ((role == CERT_TRUSTED || role == CERT_OUR_CA || role == CERT_CHAIN) && span > 3653 + 1)
		pgtls_finding(audit, PGTLS_SEV_LOW, "cert.validity_too_long", path, 0, NULL,
					  psprintf("%s \"%s\" is valid for %.0f days, more than 10 years", word, subject, span),
					  pstrdup("Plan a CA with a validity of at most 10 years and move to it before this one is compromised by age."));
}

static void
check_strength(PgtlsAudit *audit, const char *path, X509 *cert, CertRole role, const char *subject)
{
	int			mdnid = NID_undef;
	int			bits = 0;
	EVP_PKEY   *pub = X509_get0_pubkey(cert);
	char	   *key_type = pub ? pgtls_key_type_of(pub, &bits) : NULL;
	bool		loaded_by_server = (role == CERT_SERVER || role == CERT_CHAIN);

	if (X509_get_signature_info(cert, &mdnid, NULL, NULL, NULL) &&
		(mdnid == NID_md5 || mdnid == NID_sha1 || mdnid == NID_md5_sha1) && !self_signed(cert))
		pgtls_finding(audit, loaded_by_server ? PGTLS_SEV_CRITICAL : PGTLS_SEV_HIGH,
					  "cert.weak_signature", path, 0, NULL,
					  psprintf("%s \"%s\" is signed with %s, which OpenSSL refuses at security level 2 (\"%s md too weak\")",
							   role_words[role], subject, OBJ_nid2sn(mdnid), role == CERT_SERVER ? "ee" : "ca"),
					  pstrdup(role == CERT_SERVER ? "Issue a new server certificate signed with SHA-256: SELECT pgtls_enable_ssl();" :
							  "Replace it with a certificate signed with SHA-256 or stronger."));
	if (pub != NULL && (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA || EVP_PKEY_get_base_id(pub) == EVP_PKEY_DSA) &&
		EVP_PKEY_get_bits(pub) < 2048)
		pgtls_finding(audit, loaded_by_server ? PGTLS_SEV_CRITICAL : PGTLS_SEV_HIGH,
					  "cert.weak_key", path, 0, NULL,
					  psprintf("%s \"%s\" has a %d-bit %s key; at least 2048 bits are needed (\"%s key too small\")",
							   role_words[role], subject, EVP_PKEY_get_bits(pub), key_type ? key_type : "RSA",
							   role == CERT_SERVER ? "ee" : "ca"),
					  pstrdup("Replace it with a certificate for an EC P-256 or RSA 3072-bit key."));
	else if (pub != NULL && EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC && EVP_PKEY_get_bits(pub) < 224)
		pgtls_finding(audit, loaded_by_server ? PGTLS_SEV_CRITICAL : PGTLS_SEV_HIGH,
					  "cert.weak_key", path, 0, NULL,
					  psprintf("%s \"%s\" has a %d-bit EC key; at least 224 bits are needed",
							   role_words[role], subject, EVP_PKEY_get_bits(pub)),
					  pstrdup("Replace it with a certificate for an EC P-256 key."));
}

static void
check_cert(PgtlsAudit *audit, const char *path, X509 *cert, CertRole role)
{
	char	   *subject = pgtls_name_text(X509_get_subject_name(cert));

	check_validity(audit, path, cert, role, subject);
	check_strength(audit, path, cert, role, subject);
}

/* ---------------------------------------------------------------------
 * Server certificate: purpose, names, chain
 * --------------------------------------------------------------------- */

/* wildcard_certificate_match() of libpq 15 (fe-secure-common.c): "*.example.com" matches one label. */
static bool
wildcard_matches(const char *pattern, const char *host)
{
	size_t		lenpat = strlen(pattern);
	size_t		lenstr = strlen(host);
	const char *dot;

	if (lenpat < 3 || pattern[0] != '*' || pattern[1] != '.' || lenpat > lenstr)
		return false;
	if (pg_strcasecmp(pattern + 1, host + lenstr - lenpat + 1) != 0)
		return false;
	dot = strchr(host, '.');
	return dot != NULL && dot >= host + lenstr - lenpat;
}

static bool
name_matches(const ASN1_STRING *name, const char *host)
{
	const char *data = (const char *) ASN1_STRING_get0_data(name);
	int			len = ASN1_STRING_length(name);
	char	   *copy = pnstrdup(data, len);

	if ((int) strlen(copy) != len)
		return false;			/* libpq: "SSL certificate's name contains embedded null" */
	return pg_strcasecmp(copy, host) == 0 || wildcard_matches(copy, host);
}

/*
 * Would libpq 15 with sslmode=verify-full accept this certificate for host
 * (pgtls_verify_peer_name_matches_certificate_guts)?  SAN entries of the
 * host's kind (DNS names, or IP addresses for an address) are compared;
 * when the certificate has none of that kind, its first CN is.
 */
static bool
libpq_accepts_host(X509 *leaf, const char *host)
{
	GENERAL_NAMES *san = pgtls_own_general_names(X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL));
	unsigned char ip[16];
	int			iplen = 0;
	bool		check_cn = true;
	int			i;
	X509_NAME  *subject;
	int			cn;

	if (inet_pton(AF_INET, host, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, host, ip) == 1)
		iplen = 16;
	for (i = 0; san != NULL && i < sk_GENERAL_NAME_num(san); i++)
	{
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);

		if (gn->type == (iplen ? GEN_IPADD : GEN_DNS))
			check_cn = false;
		if (gn->type == GEN_DNS && name_matches(gn->d.dNSName, host))
			return true;
		if (gn->type == GEN_IPADD && iplen && ASN1_STRING_length(gn->d.iPAddress) == iplen &&
			memcmp(ASN1_STRING_get0_data(gn->d.iPAddress), ip, iplen) == 0)
			return true;
	}
	if (!check_cn)
		return false;
	subject = X509_get_subject_name(leaf);
	cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	return cn >= 0 && name_matches(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn)), host);
}

/* Names clients use to reach this server: listen_addresses, or our host name. */
static void
check_names(PgtlsAudit *audit, const char *path, X509 *leaf)
{
	char	   *copy = pstrdup(ListenAddresses ? ListenAddresses : "");
	char	   *tok;
	char	   *save = NULL;
	bool		wildcard = false;
	bool		all_ok = true;
	GENERAL_NAMES *san = pgtls_own_general_names(X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL));
	char	   *cn = pgtls_name_cn(X509_get_subject_name(leaf), NULL);

	for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
	{
		if (strcmp(tok, "*") == 0 || strcmp(tok, "0.0.0.0") == 0 || strcmp(tok, "::") == 0)
		{
			wildcard = true;
			continue;
		}
		if (libpq_accepts_host(leaf, tok))
			continue;
		all_ok = false;
		pgtls_finding(audit, PGTLS_SEV_MEDIUM, "cert.san_missing", path, 0, NULL,
					  psprintf("the server listens on \"%s\" (listen_addresses) but its certificate names neither it in a subjectAltName nor%s, so sslmode=verify-full clients using that name fail",
							   tok, san ? " (with a subjectAltName present, libpq ignores the CN) anything libpq accepts" :
							   cn ? psprintf(" in its CN \"%s\"", pgtls_safe_text((unsigned char *) cn, strlen(cn))) : " in a CN"),
					  psprintf("Issue a server certificate that includes \"%s\" with pgtls_enable_ssl().", tok));
	}
	if (wildcard)
	{
		char		host[256];

		if (gethostname(host, sizeof(host)) == 0 && host[0] != '\0' && !libpq_accepts_host(leaf, host))
		{
			all_ok = false;
			pgtls_finding(audit, PGTLS_SEV_LOW, "cert.san_missing", path, 0, NULL,
						  psprintf("the server listens on all addresses but its certificate has no name for this machine's host name \"%s\"", host),
						  pstrdup("Include the names clients use in the certificate: SELECT pgtls_enable_ssl(ARRAY['<name>', ...]);"));
		}
	}
	if (san == NULL && all_ok)
		pgtls_finding(audit, PGTLS_SEV_LOW, "cert.san_missing", path, 0, NULL,
					  psprintf("the server certificate has no subjectAltName: libpq and most drivers fall back to its CN%s%s%s, but clients that ignore the CN (Go since 1.15, browsers, RFC 9525 checkers) cannot verify the host name",
							   cn ? " \"" : "", cn ? pgtls_safe_text((unsigned char *) cn, strlen(cn)) : "", cn ? "\"" : ""),
					  pstrdup("Issue a server certificate with the names clients use: SELECT pgtls_enable_ssl(ARRAY['db.example.com','localhost']);"));
}

/* A server certificate revoked with pgtls_revoke() is still accepted by clients. */
static void
check_revoked(PgtlsAudit *audit, const char *path, X509 *leaf)
{
	char	   *serial = pgtls_serial_hex(X509_get0_serialNumber(leaf));
	PgtlsRegistryRow row;

	if (pgtls_registry_lookup(serial, &row) && row.revoked)
		pgtls_finding(audit, PGTLS_SEV_HIGH, "cert.server_revoked", path, 0, NULL,
					  psprintf("the server presents certificate %s, which was revoked with pgtls_revoke(); clients do not check a server certificate against a CRL, so they still accept it", serial),
					  pstrdup("Install a new server certificate: SELECT * FROM pgtls_enable_ssl();"));
}

static void
check_purpose(PgtlsAudit *audit, const char *path, X509 *leaf)
{
	uint32_t	flags = X509_get_extension_flags(leaf);

	if ((flags & EXFLAG_XKUSAGE) && !(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER))
		pgtls_finding(audit, PGTLS_SEV_HIGH, "cert.server_eku", path, 0, NULL,
					  pstrdup("the server certificate's extendedKeyUsage does not include serverAuth, so verifying clients reject it (\"unsupported certificate purpose\")"),
					  pstrdup("Issue a server certificate with EKU serverAuth: SELECT pgtls_enable_ssl();"));
}

static void
free_stack_shallow(void *p)
{
	sk_X509_free(p);
}

static STACK_OF(X509) *
cert_stack(List *certs, int skip)
{
	STACK_OF(X509) *sk = pgtls_own(sk_X509_new_null(), free_stack_shallow);
	ListCell   *lc;

	if (sk == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not allocate a certificate stack");
	for_each_from(lc, certs, skip)
		sk_X509_push(sk, lfirst(lc));
	return sk;
}

/*
 * The server's chain.  ssl_ca_file is the set of CAs client certificates
 * must chain to; the server certificate may legitimately come from another
 * CA, so a chain that does not verify against it (or the pgtls_admin CA) is
 * information for the clients' sslrootcert, not a fault.  A fault is a
 * ssl_cert_file whose certificates do not form a chain.
 */
static void
check_chain(PgtlsAudit *audit, const char *path, List *chain, List *trusted, X509 *our_ca)
{
	X509_STORE *store = pgtls_own_store(X509_STORE_new());
	X509_STORE_CTX *ctx = pgtls_own_store_ctx(X509_STORE_CTX_new());
	ListCell   *lc;
	int			err;
	X509	   *top = llast(chain);

	if (store == NULL || ctx == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not allocate a certificate store");
	for (lc = list_head(chain); lnext(chain, lc) != NULL; lc = lnext(chain, lc))
	{
		X509	   *child = lfirst(lc);
		X509	   *parent = lfirst(lnext(chain, lc));

		if (X509_check_issued(parent, child) != X509_V_OK)
		{
			pgtls_ossl_clear();
			pgtls_finding(audit, PGTLS_SEV_MEDIUM, "cert.chain", path, 0, NULL,
						  psprintf("the certificates in ssl_cert_file \"%s\" do not form a chain: \"%s\" did not issue \"%s\", so clients cannot build a path to their root from what the server sends",
								   path, pgtls_name_text(X509_get_subject_name(parent)),
								   pgtls_name_text(X509_get_subject_name(child))),
						  pstrdup("Put the server certificate first in ssl_cert_file, then its issuer, then that one's issuer, and reload."));
			return;
		}
	}
	foreach(lc, trusted)
		X509_STORE_add_cert(store, lfirst(lc));
	if (our_ca != NULL)
		X509_STORE_add_cert(store, our_ca);
	pgtls_ossl_clear();
	if (!X509_STORE_CTX_init(ctx, store, linitial(chain), cert_stack(chain, 1)))
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not set up certificate verification");
	/* validity and purpose have findings of their own */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
	if (X509_verify_cert(ctx) == 1)
		return;
	err = X509_STORE_CTX_get_error(ctx);
	pgtls_ossl_clear();
	pgtls_finding(audit, PGTLS_SEV_INFO, "cert.chain", path, 0, NULL,
				  psprintf("the server certificate does not chain to ssl_ca_file or the pgtls_admin CA (%s; its chain ends at \"%s\"): fine when server and client certificates come from different CAs, but clients with sslmode=verify-full need that CA's root in their sslrootcert, and pgtls_ca_cert() is not it",
						   X509_verify_cert_error_string(err), pgtls_name_text(X509_get_issuer_name(top))),
				  pstrdup("Give clients the root of the server certificate's CA as sslrootcert, or issue the server certificate from the pgtls_admin CA with SELECT pgtls_enable_ssl();."));
}

/* ---------------------------------------------------------------------
 * Keys
 * --------------------------------------------------------------------- */
static const char *
os_user(void)
{
	char	   *err = NULL;
	const char *name = get_user_name(&err);

	return name ? name : "postgres";
}

static EVP_PKEY *
check_key_file(PgtlsAudit *audit, const AuditFile *f, X509 *leaf, const char *check_id)
{
	struct stat st = f->st;
	const char *problem = pgtls_key_permission_problem(f->path, &st);
	bool		encrypted = false;
	BIO		   *bio;
	EVP_PKEY   *key;

	if (problem != NULL)
		pgtls_finding(audit, PGTLS_SEV_CRITICAL, check_id, f->path, 0, NULL,
					  psprintf("private key file \"%s\" %s (mode %04o, owner uid %u): the server refuses to load it",
							   f->path, problem, (unsigned int) (f->st.st_mode & 07777), (unsigned int) f->st.st_uid),
					  psprintf("Run: chown %s \"%s\" && chmod 0600 \"%s\" (copies of the data directory often lose these modes).",
							   os_user(), f->path, f->path));
	bio = pgtls_mem_bio(f->data, (int) f->len);
	key = pgtls_own_pkey(PEM_read_bio_PrivateKey(bio, NULL, pgtls_no_passphrase, &encrypted));
	pgtls_ossl_clear();
	if (key == NULL && encrypted)
	{
		if (!is_set(ssl_passphrase_command))
			pgtls_finding(audit, PGTLS_SEV_HIGH, "ssl.passphrase_command", f->path, 0, NULL,
						  psprintf("private key file \"%s\" is encrypted and ssl_passphrase_command is not set: reloads fail and a restart waits for a passphrase on a terminal", f->path),
						  pstrdup("Set ssl_passphrase_command (and ssl_passphrase_command_supports_reload), or install an unencrypted key with mode 0600."));
		return NULL;
	}
	if (key == NULL)
	{
		pgtls_finding(audit, PGTLS_SEV_CRITICAL, "file.invalid", f->path, 0, NULL,
					  psprintf("%s \"%s\" holds no PEM private key", f->setting, f->path),
					  psprintf("Replace \"%s\" with the PEM private key of the server certificate.", f->path));
		return NULL;
	}
	if (leaf != NULL && X509_check_private_key(leaf, key) != 1)
	{
		pgtls_ossl_clear();
		pgtls_finding(audit, PGTLS_SEV_CRITICAL, "cert.key_mismatch", f->path, 0, NULL,
					  psprintf("private key \"%s\" does not belong to the certificate in \"%s\"", f->path,
							   pgtls_resolve_path(ssl_cert_file)),
					  pstrdup("Install a matching certificate and key together: SELECT pgtls_enable_ssl(); or pgtls_install_server_cert(cert, key)."));
	}
	return key;
}

/* When a file named by a setting last changed (contents or mode), in server time. */
static TimestampTz
changed_at(const char *setting)
{
	struct stat st;
	struct timespec t;

	if (!is_set(setting) || stat(pgtls_resolve_path(setting), &st) < 0)
		return 0;
	t = (st.st_ctim.tv_sec > st.st_mtim.tv_sec ||
		 (st.st_ctim.tv_sec == st.st_mtim.tv_sec && st.st_ctim.tv_nsec > st.st_mtim.tv_nsec))
		? st.st_ctim : st.st_mtim;
	return time_t_to_timestamptz(t.tv_sec) + t.tv_nsec / 1000;
}

/*
 * The server's own loader on the files as they are now; when it loads,
 * what it negotiates.
 */
static void
check_server_load(PgtlsAudit *audit)
{
	const PgtlsTlsProbe *p = pgtls_tls_probe();
	TimestampTz newest;

	if (p->passphrase_needed)
	{
		/* the key findings say what that means for reloads and restarts */
		if (is_set(ssl_passphrase_command))
			pgtls_finding(audit, PGTLS_SEV_INFO, "ssl.not_probed", pgtls_resolve_path(ssl_key_file), 0, NULL,
						  pstrdup("the server's private key is encrypted, and the audit never runs ssl_passphrase_command: whether the files load and what the server negotiates were not checked"),
						  pstrdup("Check the server log after the next reload or restart."));
		return;
	}
	if (p->load_error == NULL)
	{
		if (p->load_warning != NULL)
			setting_finding(audit, PGTLS_SEV_CRITICAL, "ssl.dh_params", "ssl_dh_params_file",
							psprintf("the server loads its SSL files, but complains: %s. A reload falls back to the built-in DH group; the next restart fails",
									 p->load_warning),
							pstrdup("Point ssl_dh_params_file at a valid file of at least 2048-bit DH parameters (openssl dhparam -out dh.pem 2048), or reset it, then reload."));
		check_negotiation(audit, p);
		return;
	}
	newest = Max(Max(changed_at(ssl_cert_file), changed_at(ssl_key_file)),
				 Max(changed_at(ssl_ca_file), changed_at(ssl_crl_file)));
	if (PgReloadTime >= newest)
		pgtls_finding(audit, PGTLS_SEV_CRITICAL, "ssl.reload_rejected", NULL, 0, NULL,
					  psprintf("the server rejected its SSL configuration at the last configuration load (%s): %s. It keeps serving the certificate it had before, and will not start after a restart",
							   timestamptz_to_str(PgReloadTime), p->load_error),
					  pstrdup("Fix the findings for ssl_cert_file, ssl_key_file, ssl_ca_file and ssl_crl_file, then run SELECT pg_reload_conf(); and check this audit again."));
	else
		pgtls_finding(audit, PGTLS_SEV_CRITICAL, "ssl.load_failed", NULL, 0, NULL,
					  psprintf("the server cannot load the SSL files as they are now: %s. The next reload will be rejected and a restart will fail", p->load_error),
					  pstrdup("Fix the findings for ssl_cert_file, ssl_key_file, ssl_ca_file and ssl_crl_file before reloading or restarting."));
}

/* ---------------------------------------------------------------------
 * Entry points
 * --------------------------------------------------------------------- */
/* our_ca: the extension's CA certificate, or NULL; it is judged once, as ours */
void
pgtls_audit_server_files(PgtlsAudit *audit, X509 *our_ca)
{
	AuditFile	cert_file;
	AuditFile	key_file;
	AuditFile	ca_file;
	AuditFile	crl_file;
	List	   *chain = NIL;
	List	   *trusted = NIL;
	List	   *revoked;
	ListCell   *lc;
	bool		have_ca = false;

	revoked = pgtls_registry_revoked();
	if (!is_set(ssl_crl_file) && !is_set(ssl_crl_dir) && revoked != NIL && EnableSSL)
		setting_finding(audit, PGTLS_SEV_HIGH, "ssl.crl_missing", "ssl_crl_file",
						psprintf("%d certificate%s revoked with pgtls_revoke() but neither ssl_crl_file nor ssl_crl_dir is set, so revoked certificates still log in",
								 list_length(revoked), list_length(revoked) == 1 ? " is" : "s are"),
						psprintf("Set ssl_crl_file = '%s' (pgtls_admin.crl_file) and reload.", pgtls_crl_file));
	if (!EnableSSL)
		return;

	if (read_audit_file(audit, &cert_file, "ssl_cert_file", ssl_cert_file, false, PGTLS_SEV_CRITICAL))
	{
		chain = read_certs(&cert_file);
		if (chain == NIL)
			invalid_file(audit, &cert_file, PGTLS_SEV_CRITICAL, "certificate");
	}
	if (read_audit_file(audit, &key_file, "ssl_key_file", ssl_key_file, true, PGTLS_SEV_CRITICAL))
		(void) check_key_file(audit, &key_file, chain ? linitial(chain) : NULL, "file.key_permissions");
	if (is_set(ssl_ca_file) &&
		read_audit_file(audit, &ca_file, "ssl_ca_file", ssl_ca_file, false, PGTLS_SEV_CRITICAL))
	{
		have_ca = true;
		trusted = read_certs(&ca_file);
		if (trusted == NIL)
			invalid_file(audit, &ca_file, PGTLS_SEV_CRITICAL, "certificate");
	}
	if (is_set(ssl_crl_file) &&
		read_audit_file(audit, &crl_file, "ssl_crl_file", ssl_crl_file, false, PGTLS_SEV_CRITICAL))
		pgtls_audit_crls(audit, our_ca, revoked, crl_file.data, crl_file.len);
	else
		pgtls_audit_crls(audit, our_ca, revoked, NULL, 0);

	foreach(lc, chain)
		check_cert(audit, cert_file.path, lfirst(lc), foreach_current_index(lc) == 0 ? CERT_SERVER : CERT_CHAIN);
	if (chain != NIL)
	{
		check_revoked(audit, cert_file.path, linitial(chain));
		check_purpose(audit, cert_file.path, linitial(chain));
		check_names(audit, cert_file.path, linitial(chain));
		check_chain(audit, cert_file.path, chain, trusted, our_ca);
	}
	foreach(lc, trusted)
	{
		if (our_ca != NULL && X509_cmp(lfirst(lc), our_ca) == 0)
			continue;
		check_cert(audit, ca_file.path, lfirst(lc), CERT_TRUSTED);
	}
	if (have_ca && our_ca != NULL)
	{
		bool		found = false;

		foreach(lc, trusted)
			found |= X509_cmp(lfirst(lc), our_ca) == 0;
		if (!found)
			pgtls_finding(audit, PGTLS_SEV_MEDIUM, "ca.not_trusted", ca_file.path, 0, NULL,
						  psprintf("ssl_ca_file \"%s\" does not contain the pgtls_admin CA, so the server refuses client certificates from pgtls_issue_client()", ca_file.path),
						  psprintf("Add the output of SELECT pgtls_ca_cert(); to \"%s\" (or run SELECT pgtls_enable_ssl();) and reload.", ca_file.path));
	}
	check_server_load(audit);
}

/* Returns the extension's CA certificate, or NULL when there is none to read. */
X509 *
pgtls_audit_extension_ca(PgtlsAudit *audit)
{
	char	   *cert_path = pgtls_resolve_path(pgtls_ca_cert_file);
	char	   *key_path = pgtls_resolve_path(pgtls_ca_key_file);
	struct stat cst;
	struct stat kst;
	bool		have_cert = stat(cert_path, &cst) == 0;
	bool		have_key = stat(key_path, &kst) == 0;
	AuditFile	f;
	List	   *certs;
	int			count;
	TimestampTz first;
	X509	   *our_ca;
	char	   *serial;
	char	   *role;

	if (!have_cert && !have_key)
	{
		pgtls_finding(audit, PGTLS_SEV_LOW, "ca.missing", cert_path, 0, NULL,
					  psprintf("pgtls_admin has no CA: \"%s\" and \"%s\" do not exist", cert_path, key_path),
					  pstrdup("Run SELECT pgtls_init_ca(); or adopt an existing CA with pgtls_import_ca(cert, key)."));
		return NULL;
	}
	if (!have_cert || !have_key)
	{
		pgtls_finding(audit, PGTLS_SEV_HIGH, "ca.missing", have_cert ? key_path : cert_path, 0, NULL,
					  psprintf("the pgtls_admin CA %s \"%s\" is missing, so nothing can be issued",
							   have_cert ? "private key" : "certificate", have_cert ? key_path : cert_path),
					  pstrdup("Restore the file from a backup, or start over with SELECT pgtls_init_ca(replace => true);"));
		if (!have_cert)
			return NULL;
	}
	if (have_key)
	{
		const char *problem = pgtls_key_permission_problem(key_path, &kst);

		audit->files_checked++;
		if (problem != NULL)
			pgtls_finding(audit, PGTLS_SEV_HIGH, "ca.key_permissions", key_path, 0, NULL,
						  psprintf("the pgtls_admin CA key \"%s\" %s (mode %04o): pgtls_admin refuses to use it, and others may read it",
								   key_path, problem, (unsigned int) (kst.st_mode & 07777)),
						  psprintf("Run: chmod 0600 \"%s\" (as its owner, the database user), and consider a new CA if others could read it.", key_path));
	}
	if (!read_audit_file(audit, &f, "pgtls_admin.ca_cert_file", pgtls_ca_cert_file, false, PGTLS_SEV_HIGH))
		return NULL;
	certs = read_certs(&f);
	if (certs == NIL)
	{
		invalid_file(audit, &f, PGTLS_SEV_HIGH, "certificate");
		return NULL;
	}
	our_ca = linitial(certs);
	check_cert(audit, f.path, our_ca, CERT_OUR_CA);

	count = pgtls_registry_role_replaced(&serial, &role);
	if (count > 0)
		pgtls_finding(audit, PGTLS_SEV_CRITICAL, "cert.role_replaced", NULL, 0, NULL,
					  psprintf("%d live client certificate%s %s issued for a role that was then dropped and created again under the same name (first: serial %s, role \"%s\"): %s in as the new role",
							   count, count == 1 ? "" : "s", count == 1 ? "was" : "were", serial, role,
							   count == 1 ? "it logs" : "they log"),
					  pstrdup("Revoke them: SELECT pgtls_revoke(c.serial) FROM pgtls_certificates c JOIN pg_roles r ON r.rolname = c.role WHERE c.kind = 'client' AND c.revoked_at IS NULL AND c.role_oid <> r.oid;"));
	if (pgtls_registry_expiring(pgtls_expiry_warning_days, &count, &first) && count > 0)
		pgtls_finding(audit, PGTLS_SEV_LOW, "client.expiring", NULL, 0, NULL,
					  psprintf("%d client certificate%s issued by pgtls_admin expire%s within %d days (the first on %s)",
							   count, count == 1 ? "" : "s", count == 1 ? "s" : "", pgtls_expiry_warning_days,
							   timestamptz_to_str(first)),
					  pstrdup("See SELECT * FROM pgtls_expiring_certificates; and renew them with pgtls_renew(serial)."));
	return our_ca;
}

/* The leaf certificate in ssl_cert_file as it is on disk now. */
X509 *
pgtls_server_cert(void)
{
	char	   *path = pgtls_resolve_path(ssl_cert_file);
	size_t		len;
	char	   *pem = pgtls_read_file(path, "server certificate file", "Check ssl_cert_file, or run SELECT pgtls_enable_ssl();", false, &len);

	return pgtls_parse_cert(pem, (int) len, "ssl_cert_file", NULL);
}
