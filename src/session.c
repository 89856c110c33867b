/*
 * session.c
 *		State of this backend that several layers read: how deep in
 *		ExecutorRun it is, and whether the top-level statement's results
 *		wait for the issuance journal (statement.c sets both).
 */
#include "pgtls_base.h"

int			pgtls_executor_depth = 0;
bool		pgtls_receiver_wrapped = false;
