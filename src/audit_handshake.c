/*
 * audit_handshake.c
 *		In-memory TLS handshakes (a BIO pair) between the server's own
 *		SSL_CTX and model clients: what a client really negotiates, instead
 *		of what the settings seem to say.
 *
 * The clients are a libpq 15 client (TLS 1.2 or later, OpenSSL's defaults
 * otherwise: libpq sets neither ciphers nor groups) and a "legacy" client
 * that offers everything OpenSSL has at security level 0, pinned to one
 * protocol version at a time.  A handshake that completes on the server's
 * side is something the server really offers; one that fails carries the
 * server's own reason ("no suitable key share", "unsupported protocol").
 * Nothing here allocates while an SSL object is live, so no ERROR can leak
 * one.
 */
#include "pgtls_audit.h"

#include <openssl/err.h>

#include "lib/stringinfo.h"

const char *const pgtls_tls_version_names[PGTLS_NVERSIONS] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
static const int tls_versions[PGTLS_NVERSIONS] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};

/* Every group and TLS 1.3 suite this OpenSSL can offer, for the legacy client. */
#define LEGACY_GROUPS "X25519:P-256:X448:P-521:P-384:P-224:P-192:secp256k1:brainpoolP256r1:brainpoolP384r1:brainpoolP512r1:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192"
#define LEGACY_SUITES13 "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"

/* Client contexts live as long as the backend: building one costs ~0.2 ms. */
static SSL_CTX *libpq_client = NULL;
static SSL_CTX *pinned_client[PGTLS_NVERSIONS];

int
pgtls_tls_version_index(int version)
{
	int			i;

	for (i = 0; i < PGTLS_NVERSIONS; i++)
		if (tls_versions[i] == version)
			return i;
	return -1;
}

static SSL_CTX *
new_client(void)
{
	SSL_CTX    *c = SSL_CTX_new(TLS_client_method());

	if (c == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not create a TLS client context");
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	return c;
}

/* Everything OpenSSL can offer, at security level 0; version 0 = any. */
static SSL_CTX *
new_legacy_client(int version, const char *cipher_list)
{
	SSL_CTX    *c = new_client();
	StringInfoData list;

	initStringInfo(&list);
	appendStringInfo(&list, "%s:@SECLEVEL=0", cipher_list ? cipher_list : "ALL:COMPLEMENTOFALL");
	SSL_CTX_set_security_level(c, 0);
	if (SSL_CTX_set_cipher_list(c, list.data) != 1 ||
		SSL_CTX_set_ciphersuites(c, LEGACY_SUITES13) != 1 ||
		SSL_CTX_set1_groups_list(c, LEGACY_GROUPS) != 1 ||
		SSL_CTX_set_min_proto_version(c, version ? version : TLS1_VERSION) != 1 ||
		(version && SSL_CTX_set_max_proto_version(c, version) != 1) ||
		(cipher_list && SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION) != 1))
	{
		SSL_CTX_free(c);
		pfree(list.data);
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not set up a TLS client context");
	}
	pfree(list.data);
	return c;
}

static void
make_clients(void)
{
	int			i;

	if (libpq_client == NULL)
	{
		SSL_CTX    *c = new_client();

		/* libpq 15: ssl_min_protocol_version defaults to TLSv1.2, nothing else is set */
		if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1)
		{
			SSL_CTX_free(c);
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not set up a TLS client context");
		}
		libpq_client = c;
	}
	for (i = 0; i < PGTLS_NVERSIONS; i++)
		if (pinned_client[i] == NULL)
			pinned_client[i] = new_legacy_client(tls_versions[i], NULL);
	ERR_clear_error();
}

static void
take_error(char *dst, size_t size)
{
	unsigned long e = ERR_peek_last_error();

	if (e != 0 && dst[0] == '\0')
	{
		const char *reason = ERR_reason_error_string(e);

		strlcpy(dst, reason ? reason : "unknown error", size);
	}
	ERR_clear_error();
}

static bool
step(SSL *ssl, int *rc, bool *dead, char *error, size_t size)
{
	int			e;

	if (*rc == 1 || *dead)
		return false;
	ERR_clear_error();
	*rc = SSL_do_handshake(ssl);
	if (*rc == 1)
		return true;
	e = SSL_get_error(ssl, *rc);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
	{
		*dead = true;
		take_error(error, size);
		if (error[0] == '\0')
			strlcpy(error, "the peer closed the connection", size);
	}
	return true;
}

/*
 * One handshake between server_ctx and client_ctx over a BIO pair; h says
 * whether the server completed it, and with what.  Optionally the client
 * presents cert (and chain).
 */
void
pgtls_handshake(SSL_CTX *server_ctx, SSL_CTX *client_ctx, PgtlsHandshake *h)
{
	SSL		   *s = SSL_new(server_ctx);
	SSL		   *c = SSL_new(client_ctx);
	BIO		   *sb = NULL;
	BIO		   *cb = NULL;
	int			rs = 0;
	int			rc = 0;
	bool		s_dead = false;
	bool		c_dead = false;
	int			i;

	memset(h, 0, sizeof(*h));
	if (s == NULL || c == NULL || BIO_new_bio_pair(&sb, 0, &cb, 0) != 1)
	{
		SSL_free(s);
		SSL_free(c);
		ERR_clear_error();
		strlcpy(h->server_error, "out of memory", sizeof(h->server_error));
		return;
	}
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (i = 0; i < 50; i++)
	{
		bool		moved = false;

		moved |= step(c, &rc, &c_dead, h->client_error, sizeof(h->client_error));
		moved |= step(s, &rs, &s_dead, h->server_error, sizeof(h->server_error));
		if (!moved)
			break;
	}
	/* TLS 1.3: the client finishes first; a server alert arrives on its next read */
	if (rc == 1 && rs != 1)
	{
		char		byte;

		ERR_clear_error();
		if (SSL_read(c, &byte, 1) <= 0)
			take_error(h->client_error, sizeof(h->client_error));
	}
	h->ok = (rs == 1);
	h->verify_result = SSL_get_verify_result(s);
	if (h->ok)
	{
		strlcpy(h->version, SSL_get_version(s), sizeof(h->version));
		strlcpy(h->cipher, SSL_get_cipher_name(s), sizeof(h->cipher));
		h->group = SSL_get_negotiated_group(s);
	}
	else if (h->server_error[0] == '\0')
		strlcpy(h->server_error, "the handshake did not complete", sizeof(h->server_error));
	SSL_free(s);
	SSL_free(c);
	ERR_clear_error();
}

/* Is this suite one of a weak class?  Returns the class, or -1. */
static int
weak_class(const SSL_CIPHER *c)
{
	int			cipher = SSL_CIPHER_get_cipher_nid(c);
	int			digest = SSL_CIPHER_get_digest_nid(c);

	if (cipher == NID_undef)
		return PGTLS_WEAK_NULL;
	if (SSL_CIPHER_get_auth_nid(c) == NID_auth_null)
		return PGTLS_WEAK_ANON;
	if (SSL_CIPHER_get_bits(c, NULL) < 128 || cipher == NID_rc4 || cipher == NID_des_cbc ||
		cipher == NID_des_ede3_cbc || cipher == NID_rc2_cbc || digest == NID_md5)
		return PGTLS_WEAK_LEGACY;
	return -1;
}

/* Can the server's key authenticate this suite (PSK and SRP need callbacks the server lacks)? */
static bool
usable_with_key(const SSL_CIPHER *c, EVP_PKEY *key)
{
	int			auth = SSL_CIPHER_get_auth_nid(c);
	int			kx = SSL_CIPHER_get_kx_nid(c);

	if (kx == NID_kx_psk || kx == NID_kx_ecdhe_psk || kx == NID_kx_dhe_psk ||
		kx == NID_kx_rsa_psk || kx == NID_kx_srp)
		return false;
	if (auth == NID_auth_any || auth == NID_auth_null)
		return true;
	if (key == NULL)
		return false;
	if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS"))
		return auth == NID_auth_rsa;
	if (EVP_PKEY_is_a(key, "EC") || EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return auth == NID_auth_ecdsa;
	if (EVP_PKEY_is_a(key, "DSA"))
		return auth == NID_auth_dss;
	return false;
}

/* Does this OpenSSL have any legacy suite (RC4, DES, 3DES, ...) at all? */
static bool
library_has_legacy_suites(void)
{
	static int	known = -1;
	SSL_CTX    *c;
	STACK_OF(SSL_CIPHER) *all;
	int			i;

	if (known >= 0)
		return known == 1;
	c = new_legacy_client(0, NULL);
	all = SSL_CTX_get_ciphers(c);
	known = 0;
	for (i = 0; all != NULL && i < sk_SSL_CIPHER_num(all); i++)
		if (weak_class(sk_SSL_CIPHER_value(all, i)) == PGTLS_WEAK_LEGACY)
			known = 1;
	SSL_CTX_free(c);
	return known == 1;
}

/*
 * Probe server_ctx: a libpq client, a pinned legacy client per version,
 * and, for each weak class of suites the context enables for its key, a
 * client offering only those suites.  Fills everything in p but the load
 * fields.
 */
void
pgtls_negotiate(SSL_CTX *server_ctx, PgtlsTlsProbe *p)
{
	SSL		   *s;
	STACK_OF(SSL_CIPHER) *supported;
	StringInfoData lists[PGTLS_NWEAK];
	EVP_PKEY   *key = SSL_CTX_get0_privatekey(server_ctx);
	int			i;

	make_clients();
	p->library_has_legacy = library_has_legacy_suites();
	p->security_level = SSL_CTX_get_security_level(server_ctx);
	p->min_version = SSL_CTX_get_min_proto_version(server_ctx);
	p->max_version = SSL_CTX_get_max_proto_version(server_ctx);
	pgtls_handshake(server_ctx, libpq_client, &p->libpq);
	for (i = 0; i < PGTLS_NVERSIONS; i++)
		pgtls_handshake(server_ctx, pinned_client[i], &p->pinned[i]);

	for (i = 0; i < PGTLS_NWEAK; i++)
		initStringInfo(&lists[i]);
	s = SSL_new(server_ctx);
	supported = s ? SSL_get1_supported_ciphers(s) : NULL;
	p->nsuites = 0;
	for (i = 0; supported != NULL && i < sk_SSL_CIPHER_num(supported); i++)
	{
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(supported, i);
		int			w;

		if (!usable_with_key(c, key))
			continue;
		p->nsuites++;
		w = weak_class(c);
		if (w < 0)
			continue;
		p->weak_listed[w]++;
		appendStringInfo(&lists[w], "%s%s", lists[w].len ? ":" : "", SSL_CIPHER_get_name(c));
	}
	sk_SSL_CIPHER_free(supported);
	SSL_free(s);
	ERR_clear_error();

	for (i = 0; i < PGTLS_NWEAK; i++)
	{
		SSL_CTX    *c;

		memset(&p->weak[i], 0, sizeof(p->weak[i]));
		if (p->weak_listed[i] == 0)
			continue;
		c = new_legacy_client(0, lists[i].data);
		pgtls_handshake(server_ctx, c, &p->weak[i]);
		SSL_CTX_free(c);
	}
}
