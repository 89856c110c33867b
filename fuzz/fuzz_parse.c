/*
 * fuzz_parse.c
 *		libFuzzer harness over pgtls_admin's parsing entry points: the same
 *		src/x509_parse.c, src/x509_describe.c, src/x509_csr.c and src/ossl.c the extension is built from,
 *		run against fuzz/pg_shim.c instead of a server.
 *
 * The first input byte picks the entry point and whether the rest is wrapped
 * as a PEM block; the harness fails (abort) unless every input either
 * succeeds or raises ERROR with SQLSTATE 22023.  Each input runs in its own
 * memory context, deleted afterwards even after an ERROR, so LeakSanitizer
 * sees any OpenSSL object the ownership callbacks failed to free.
 */
#include "pgtls_x509.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "utils/memutils.h"

#include "fuzz_shim.h"

#undef fprintf

static const char *const labels[] = {"CERTIFICATE", "PRIVATE KEY", "CERTIFICATE REQUEST"};

static char *
as_pem(const uint8_t *data, size_t size, const char *label, int *len)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);
	char	   *pem;

	PEM_write_bio(bio, label, "", data, (long) size);
	*len = (int) BIO_get_mem_data(bio, &pem);
	return pnstrdup(pem, *len);
}

static void
run(int target, const char *input, int len)
{
	PgtlsCertInfo info;

	switch (target)
	{
		case 0:
			pgtls_describe_cert(pgtls_parse_cert(input, len, "certificate", NULL), &info);
			break;
		case 1:
			(void) pgtls_parse_private_key(input, len, "private_key", NULL);
			break;
		default:
			(void) pgtls_parse_csr(input, len, "user1");
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static MemoryContext root;
	MemoryContext input_cxt;
	int			target;
	bool		wrap;

	if (size < 1)
		return 0;
	if (root == NULL)
		root = AllocSetContextCreate(NULL, "fuzz", ALLOCSET_DEFAULT_SIZES);
	target = data[0] % 3;
	wrap = (data[0] & 0x80) != 0;
	input_cxt = AllocSetContextCreate(root, "input", ALLOCSET_DEFAULT_SIZES);
	CurrentMemoryContext = input_cxt;
	shim_sqlstate = 0;
	if (sigsetjmp(shim_error_jump, 0) == 0)
	{
		int			len = (int) size - 1;
		const char *input = (const char *) data + 1;

		if (wrap)
			input = as_pem(data + 1, size - 1, labels[target], &len);
		run(target, input, len);
	}
	else if (shim_sqlstate != ERRCODE_INVALID_PARAMETER_VALUE)
	{
		fprintf(stderr, "input raised SQLSTATE %s, not 22023\n", shim_sqlstate_text(shim_sqlstate));
		abort();
	}
	CurrentMemoryContext = root;
	shim_delete_child(root, input_cxt);
	ERR_clear_error();
	return 0;
}
