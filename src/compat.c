/*
 * compat.c
 *		Server APIs whose signature changes between majors, behind one
 *		function each (see pgtls_compat.h for the rest).
 */
#include "pgtls_base.h"
#include "pgtls_compat.h"

#include "utils/guc.h"
#include "utils/guc_tables.h"

/* Where a setting was last set, as pg_settings shows it (16: get_guc_variables(&n)). */
void
pgtls_setting_source(const char *name, const char **file, int *line)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;

	*file = NULL;
	*line = 0;
	for (i = 0; i < n; i++)
		if (strcmp(vars[i]->name, name) == 0)
		{
			*file = vars[i]->sourcefile;
			*line = vars[i]->sourcefile ? vars[i]->sourceline : 0;
			return;
		}
}
