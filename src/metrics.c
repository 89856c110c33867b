/*
 * metrics.c
 *		The rows of the pgtls_metrics view that come from files: the
 *		server certificate's expiry, and the update times of the CRLs the
 *		server checks client certificates against.
 *
 * Monitoring reads these on every scrape as a pg_monitor member, so a file
 * that is missing, unreadable or garbled gives no row rather than an
 * error (the audit says what is wrong with it), and nothing of a file
 * leaves here but dates and the public names and fingerprints of
 * certificates.  The paths come from the ssl_* settings, which only a
 * superuser can change; the files are read as they are now, which is what
 * the next reload loads.
 */
#include "pgtls_audit.h"

#include <openssl/pem.h>

#include "libpq/libpq.h"

/*
 * The first certificate in ssl_cert_file, described; false when there is
 * none to read.
 */
bool
pgtls_server_cert_times(PgtlsCertInfo *info)
{
	PgtlsFileRead f;
	X509	   *cert;

	if (ssl_cert_file == NULL || ssl_cert_file[0] == '\0' ||
		!pgtls_try_read_file(pgtls_resolve_path(ssl_cert_file), false, &f))
		return false;
	pgtls_ossl_clear();
	cert = pgtls_own_x509(PEM_read_bio_X509(pgtls_mem_bio(f.data, (int) f.len), NULL, NULL, NULL));
	pgtls_ossl_clear();
	if (cert == NULL)
		return false;
	pgtls_describe_cert_brief(cert, info);
	return true;
}

/*
 * One PgtlsCrlTimes per CA that signs client certificates (ssl_ca_file)
 * and has a CRL signed by it in ssl_crl_file or ssl_crl_dir: the CRL the
 * server's certificate store picks for it, current or not.
 */
List *
pgtls_crl_times(void)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, pgtls_server_ca_crls())
	{
		PgtlsCaCrl *c = lfirst(lc);
		PgtlsCrlTimes *t = palloc0(sizeof(PgtlsCrlTimes));
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(c->crl);

		t->issuer = pgtls_name_text(X509_get_subject_name(c->ca));
		t->ca_fingerprint = pgtls_fingerprint_sha256(c->ca);
		t->this_update = pgtls_asn1_time_to_timestamptz(X509_CRL_get0_lastUpdate(c->crl));
		t->has_next_update = next != NULL;
		if (next != NULL)
			t->next_update = pgtls_asn1_time_to_timestamptz(next);
		result = lappend(result, t);
	}
	pgtls_ossl_clear();
	return result;
}
