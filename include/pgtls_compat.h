/*
 * pgtls_compat.h
 *		The server APIs that differ between PostgreSQL majors.
 *
 * Everything version-specific lives here and in src/compat.c, so that
 * supporting another major is a change to these two files alone.  Only
 * PostgreSQL 15.1 and later 15.x releases build: 15.0 lacks
 * InitMaterializedSRF, and 16 changes what the notes below say.
 */
#ifndef PGTLS_COMPAT_H
#define PGTLS_COMPAT_H

#include "funcapi.h"

#if PG_VERSION_NUM < 150001
#error "pgtls_admin builds on PostgreSQL 15.1 or later 15.x (15.0 lacks InitMaterializedSRF)"
#endif
#if PG_VERSION_NUM >= 160000
/*
 * Porting to 16 means, here and in src/compat.c: tokenize_auth_file() takes
 * an include depth and the file name of included files (pg_hba.conf gains
 * include, include_if_exists and include_dir); get_guc_variables() takes
 * int *num_vars; pg_hba.conf database and role fields may be regular
 * expressions (AuthToken.regex), which src/hba_match.c must then compile
 * and match as check_db()/check_role() do in 16.
 */
#error "pgtls_admin builds on PostgreSQL 15 only; see pgtls_compat.h for what 16 changes"
#endif

/* Materialize-mode set-returning functions (named SetSingleFuncCall in 15.0). */
#define pgtls_init_srf(fcinfo) InitMaterializedSRF((fcinfo), 0)

/*
 * pg_hba.conf tokenizer: 16 adds an include depth argument (and include
 * directives), 15 takes the open file and an elevel.  Returns the memory
 * context holding the tokens.
 */
#define pgtls_tokenize_hba(path, file, lines) \
	tokenize_auth_file((path), (file), (lines), DEBUG3)

#endif							/* PGTLS_COMPAT_H */
