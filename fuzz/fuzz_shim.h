/* fuzz_shim.h: what the fuzz harness needs from pg_shim.c */
#ifndef FUZZ_SHIM_H
#define FUZZ_SHIM_H

#include <setjmp.h>

extern sigjmp_buf shim_error_jump;
extern int	shim_sqlstate;
extern void shim_delete_child(MemoryContext parent, MemoryContext child);
extern const char *shim_sqlstate_text(int code);

#endif
