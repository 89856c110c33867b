/*
 * pgtls_compat.h
 *		The few server APIs that differ between PostgreSQL majors.
 *
 * Everything version-specific lives here so that supporting another major
 * is a change to this file alone.
 */
#ifndef PGTLS_COMPAT_H
#define PGTLS_COMPAT_H

#include "funcapi.h"

#if PG_VERSION_NUM < 150000
#error "pgtls_admin needs PostgreSQL 15 or later (add an InitMaterializedSRF fallback here for 14)"
#endif

/* Materialize-mode set-returning functions: SetSingleFuncCall was renamed in 16. */
#define pgtls_init_srf(fcinfo) InitMaterializedSRF((fcinfo), 0)

/*
 * pg_hba.conf tokenizer: 16 adds an include depth argument (and include
 * directives), 15 takes the open file and an elevel.  Returns the memory
 * context holding the tokens.
 */
#define pgtls_tokenize_hba(path, file, lines) \
	tokenize_auth_file((path), (file), (lines), DEBUG3)

#endif							/* PGTLS_COMPAT_H */
