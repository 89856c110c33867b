/*
 * statement.c
 *		What waits for a statement: its result rows wait for the issuance
 *		journal to be durable, and the registry rows of the certificates it
 *		issued are written when the run that issued them ends.
 *
 * Writing the registry rows of a statement that issues many certificates
 * in one INSERT, rather than one INSERT per certificate, takes most of the
 * database's cost out of issuing; any read of the registry writes pending
 * rows first, so callers still see what they issued.
 */
#include "pgtls_stores.h"

#include "executor/executor.h"

static ExecutorRun_hook_type prev_executor_run = NULL;

typedef struct StatementReceiver
{
	DestReceiver pub;
	DestReceiver *inner;
} StatementReceiver;

static bool
statement_receive(TupleTableSlot *slot, DestReceiver *self)
{
	StatementReceiver *r = (StatementReceiver *) self;

	pgtls_journal_flush();
	return r->inner->receiveSlot(slot, r->inner);
}

static void
statement_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	StatementReceiver *r = (StatementReceiver *) self;

	r->inner->rStartup(r->inner, operation, typeinfo);
}

static void
statement_shutdown(DestReceiver *self)
{
	StatementReceiver *r = (StatementReceiver *) self;

	pgtls_journal_flush();
	r->inner->rShutdown(r->inner);
}

static void
statement_destroy(DestReceiver *self)
{
	/* the inner receiver belongs to the portal, which destroys it */
}

/*
 * ExecutorRun of the top-level statement runs with its receiver wrapped;
 * statements run inside it (SPI) are left alone.  When a run ends, the
 * registry rows of the certificates issued in it are written.
 */
static void
statement_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
					 bool execute_once)
{
	DestReceiver *saved = queryDesc->dest;
	bool		wrap = (pgtls_executor_depth == 0 && saved != NULL);
	StatementReceiver receiver;

	/* a statement sees what was issued before it */
	pgtls_registry_flush(0);
	if (wrap)
	{
		memset(&receiver, 0, sizeof(receiver));
		receiver.pub.receiveSlot = statement_receive;
		receiver.pub.rStartup = statement_startup;
		receiver.pub.rShutdown = statement_shutdown;
		receiver.pub.rDestroy = statement_destroy;
		receiver.pub.mydest = saved->mydest;
		receiver.inner = saved;
		queryDesc->dest = &receiver.pub;
		pgtls_receiver_wrapped = true;
	}
	pgtls_executor_depth++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		pgtls_executor_depth--;
		if (wrap)
		{
			queryDesc->dest = saved;
			pgtls_receiver_wrapped = false;
		}
	}
	PG_END_TRY();
	pgtls_registry_flush(pgtls_executor_depth + 1);
	if (wrap)
		pgtls_journal_flush();
}

void
pgtls_statement_install_hooks(void)
{
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = statement_executor_run;
}

