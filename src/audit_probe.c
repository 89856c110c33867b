/*
 * audit_probe.c
 *		A trial run of the server's own SSL loader, be_tls_init(), on the
 *		files as they are now, with its log output captured instead of
 *		logged: "the server will refuse this" in the server's own words.
 *
 * It replaces only the calling backend's SSL_CTX; established connections
 * hold their own reference.  A server built without OpenSSL has no loader
 * to run, and then there is nothing to probe.
 */
#include "pgtls_audit.h"

#include <openssl/err.h>

#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "utils/elog.h"
#include "utils/guc.h"

#ifdef USE_OPENSSL
static List *captured = NIL;
static MemoryContext capture_cxt = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

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

/* NULL when the server would load the files, else its first complaint. */
char *
pgtls_probe_server_load(void)
{
	int			rc;
	int			save_min = log_min_messages;

	captured = NIL;
	capture_cxt = CurrentMemoryContext;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = capture_log;
	PG_TRY();
	{
		/* the loader's complaints are LOG; make sure they reach the hook */
		log_min_messages = Min(log_min_messages, LOG);
		rc = be_tls_init(false);
	}
	PG_FINALLY();
	{
		log_min_messages = save_min;
		emit_log_hook = prev_emit_log_hook;
		capture_cxt = NULL;
	}
	PG_END_TRY();
	ERR_clear_error();
	if (rc == 0)
		return NULL;
	return captured != NIL ? (char *) linitial(captured) : pstrdup("the server could not load its SSL configuration");
}

#else

char *
pgtls_probe_server_load(void)
{
	return NULL;
}

#endif							/* USE_OPENSSL */
