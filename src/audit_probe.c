/*
 * audit_probe.c
 *		A trial run of the server's own SSL loader, be_tls_init(), on the
 *		files as they are now, with its log output captured instead of
 *		logged: "the server will refuse this" in the server's own words.
 *		When it loads, the SSL_CTX it built is captured through the
 *		exported openssl_tls_init_hook and probed with in-memory handshakes
 *		(audit_handshake.c), so the audit judges what the server really
 *		negotiates.
 *
 * The trial replaces only the calling backend's SSL_CTX; established
 * connections hold their own reference.  It never asks for a passphrase and
 * never runs ssl_passphrase_command: an encrypted key is reported as such.
 * The result is kept per backend while the ssl settings, the files they
 * name and the OpenSSL library stay the same (a probe costs ~10 ms).  A
 * server built without OpenSSL has no loader to run.
 */
#include "pgtls_audit.h"

#include <openssl/err.h>

#include "lib/stringinfo.h"
#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "portability/instr_time.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#ifdef USE_OPENSSL
static List *captured = NIL;
static MemoryContext capture_cxt = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;
static openssl_tls_init_hook_typ prev_tls_init_hook = NULL;
static SSL_CTX *captured_ctx = NULL;
static bool passphrase_asked = false;

static void
capture_log(ErrorData *edata)
{
	if (edata->elevel <= LOG && capture_cxt != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(capture_cxt);

		captured = lappend(captured, pstrdup(edata->message ? edata->message : ""));
		MemoryContextSwitchTo(old);
		edata->output_to_server = false;
		edata->output_to_client = false;
		return;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* Never prompt and never run ssl_passphrase_command: just note that a passphrase was wanted. */
static int
refuse_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	passphrase_asked = true;
	return -1;
}

/* Runs inside be_tls_init() with the new context, before any file is loaded. */
static void
capture_tls_init(SSL_CTX *ctx, bool isServerStart)
{
	if (prev_tls_init_hook)
		prev_tls_init_hook(ctx, isServerStart);
	SSL_CTX_set_default_passwd_cb(ctx, refuse_passphrase);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	if (captured_ctx == NULL && SSL_CTX_up_ref(ctx) == 1)
		captured_ctx = ctx;
}

static void
restore_hooks(int save_min)
{
	log_min_messages = save_min;
	emit_log_hook = prev_emit_log_hook;
	openssl_tls_init_hook = prev_tls_init_hook;
	capture_cxt = NULL;
}

/*
 * Run be_tls_init(false) with its LOG output captured and its context
 * captured.  Returns the loader's first complaint (NULL when it loaded) and
 * sets *ctx to our reference to the loaded context (NULL when it failed),
 * *asked when the key wanted a passphrase, and *warning to what it logged
 * although it loaded.
 */
static char *
trial_load(SSL_CTX **ctx, bool *asked, char **warning)
{
	int			rc;
	int			save_min = log_min_messages;

	captured = NIL;
	captured_ctx = NULL;
	passphrase_asked = false;
	capture_cxt = CurrentMemoryContext;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = capture_log;
	prev_tls_init_hook = openssl_tls_init_hook;
	openssl_tls_init_hook = capture_tls_init;
	PG_TRY();
	{
		/* the loader's complaints are LOG; make sure they reach the hook */
		log_min_messages = Min(log_min_messages, LOG);
		rc = be_tls_init(false);
	}
	PG_CATCH();
	{
		restore_hooks(save_min);
		if (captured_ctx != NULL)
			SSL_CTX_free(captured_ctx);
		captured_ctx = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();
	restore_hooks(save_min);
	if (rc != 0 && captured_ctx != NULL)
	{
		SSL_CTX_free(captured_ctx);
		captured_ctx = NULL;
	}
	ERR_clear_error();
	*ctx = captured_ctx;
	*asked = passphrase_asked;
	captured_ctx = NULL;
	*warning = NULL;
	if (rc == 0)
	{
		/* it loaded, but said something: only a bad ssl_dh_params_file does that */
		if (captured != NIL)
			*warning = linitial(captured);
		return NULL;
	}
	return captured != NIL ? (char *) linitial(captured) : pstrdup("the server could not load its SSL configuration");
}

/* ---------------------------------------------------------------------
 * The per-backend cache
 * --------------------------------------------------------------------- */
static MemoryContext probe_cxt = NULL;
static PgtlsTlsProbe *probe = NULL;
static char *probe_key = NULL;

static void
add_file_identity(StringInfo key, const char *setting)
{
	struct stat st;

	if (setting == NULL || setting[0] == '\0')
	{
		appendStringInfoString(key, "|-");
		return;
	}
	if (stat(pgtls_resolve_path(setting), &st) < 0)
	{
		appendStringInfo(key, "|%s:missing", setting);
		return;
	}
	appendStringInfo(key, "|%s:%lu:%lu:%ld:%ld.%ld:%ld.%ld:%o:%u", setting,
					 (unsigned long) st.st_dev, (unsigned long) st.st_ino, (long) st.st_size,
					 (long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
					 (long) st.st_ctim.tv_sec, st.st_ctim.tv_nsec,
					 (unsigned int) st.st_mode, (unsigned int) st.st_uid);
}

/* Everything the loader's result depends on. */
static char *
current_key(void)
{
	StringInfoData key;

	initStringInfo(&key);
	appendStringInfo(&key, "%lx|%s|%s|%s|%d|%d|%d|%d|%s|%s",
					 (unsigned long) OpenSSL_version_num(), SSLCipherSuites, SSLECDHCurve,
					 ssl_dh_params_file, (int) SSLPreferServerCiphers,
					 ssl_min_protocol_version, ssl_max_protocol_version,
					 (int) ssl_passphrase_command_supports_reload, ssl_passphrase_command,
					 ssl_crl_dir);
	add_file_identity(&key, ssl_cert_file);
	add_file_identity(&key, ssl_key_file);
	add_file_identity(&key, ssl_ca_file);
	add_file_identity(&key, ssl_crl_file);
	add_file_identity(&key, ssl_dh_params_file);
	return key.data;
}

static void
probe_cache_reset(void *arg)
{
	PgtlsTlsProbe *p = arg;

	if (p->ctx != NULL)
		SSL_CTX_free(p->ctx);
	p->ctx = NULL;
	if (probe == p)
	{
		probe = NULL;
		probe_key = NULL;
		probe_cxt = NULL;
	}
}

/*
 * The server's loader run on the current files, and, when it loads, what
 * its context negotiates.  Kept per backend; the result belongs to the
 * cache (do not free it).
 */
const PgtlsTlsProbe *
pgtls_tls_probe(void)
{
	char	   *key = current_key();
	MemoryContext cxt;
	MemoryContext old;
	MemoryContextCallback *cb;
	PgtlsTlsProbe *p;
	instr_time	start;
	instr_time	duration;

	if (probe != NULL && strcmp(key, probe_key) == 0)
	{
		probe->cached = true;
		return probe;
	}
	if (probe_cxt != NULL)
		MemoryContextDelete(probe_cxt);

	INSTR_TIME_SET_CURRENT(start);
	cxt = AllocSetContextCreate(TopMemoryContext, "pgtls_admin TLS probe", ALLOCSET_SMALL_SIZES);
	p = MemoryContextAllocZero(cxt, sizeof(PgtlsTlsProbe));
	cb = MemoryContextAllocZero(cxt, sizeof(MemoryContextCallback));
	cb->func = probe_cache_reset;
	cb->arg = p;
	MemoryContextRegisterResetCallback(cxt, cb);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		p->load_error = trial_load(&p->ctx, &p->passphrase_needed, &p->load_warning);
		if (p->ctx != NULL)
			pgtls_negotiate(p->ctx, p);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);	/* its callback frees the context */
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	probe = p;
	probe_cxt = cxt;
	probe_key = MemoryContextStrdup(cxt, key);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	p->cost_ms = INSTR_TIME_GET_MILLISEC(duration);
	p->cached = false;
	return p;
}

#else

const PgtlsTlsProbe *
pgtls_tls_probe(void)
{
	static PgtlsTlsProbe none = {0};

	return &none;
}

#endif							/* USE_OPENSSL */
