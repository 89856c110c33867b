/*
 * pg_shim.c
 *		Just enough of the backend for the fuzz harness to run the x509 layer
 *		(src/x509_*.c) and src/ossl.c outside a server.
 *
 * Memory contexts keep their allocations and reset callbacks so that deleting
 * one frees everything and runs the callbacks, as the backend does; ereport
 * at ERROR records the SQLSTATE and long-jumps back to the harness.
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdarg.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "fuzz_shim.h"

/* port.h maps these to the backend's own implementations; use libc's */
#undef vsnprintf
#undef snprintf
#undef qsort

typedef struct Chunk
{
	struct Chunk *next;
} Chunk;

typedef struct ShimContext
{
	MemoryContextData base;		/* only so MemoryContext pointers fit */
	Chunk	   *chunks;
	MemoryContextCallback *callbacks;
	struct ShimContext *first_child;
	struct ShimContext *next_sibling;
} ShimContext;

MemoryContext CurrentMemoryContext = NULL;
sigjmp_buf	shim_error_jump;
int			shim_sqlstate = 0;
static int	pending_elevel = 0;
static int	pending_sqlstate = 0;

static void *
chunk_alloc(MemoryContext cxt, Size size)
{
	ShimContext *c = (ShimContext *) cxt;
	Chunk	   *chunk = malloc(sizeof(Chunk) + MAXALIGN(size ? size : 1));

	if (chunk == NULL)
		abort();
	chunk->next = c->chunks;
	c->chunks = chunk;
	return (char *) chunk + sizeof(Chunk);
}

MemoryContext
AllocSetContextCreateInternal(MemoryContext parent, const char *name,
							  Size minContextSize, Size initBlockSize, Size maxBlockSize)
{
	ShimContext *c = calloc(1, sizeof(ShimContext));

	if (c == NULL)
		abort();
	if (parent != NULL)
	{
		c->next_sibling = ((ShimContext *) parent)->first_child;
		((ShimContext *) parent)->first_child = c;
	}
	return (MemoryContext) c;
}

static void
shim_context_free(ShimContext *c)
{
	while (c->first_child != NULL)
	{
		ShimContext *child = c->first_child;

		c->first_child = child->next_sibling;
		shim_context_free(child);
	}
	while (c->callbacks != NULL)
	{
		MemoryContextCallback *cb = c->callbacks;

		c->callbacks = cb->next;
		cb->func(cb->arg);
	}
	while (c->chunks != NULL)
	{
		Chunk	   *chunk = c->chunks;

		c->chunks = chunk->next;
		free(chunk);
	}
}

void
MemoryContextDelete(MemoryContext context)
{
	ShimContext *c = (ShimContext *) context;

	/* unlink from a parent is not needed: the harness deletes roots only, or children last */
	shim_context_free(c);
	free(c);
}

void
shim_delete_child(MemoryContext parent, MemoryContext child)
{
	ShimContext *p = (ShimContext *) parent;
	ShimContext **link = &p->first_child;

	while (*link != NULL && *link != (ShimContext *) child)
		link = &(*link)->next_sibling;
	if (*link != NULL)
		*link = (*link)->next_sibling;
	MemoryContextDelete(child);
}

void
MemoryContextRegisterResetCallback(MemoryContext context, MemoryContextCallback *cb)
{
	ShimContext *c = (ShimContext *) context;

	cb->next = c->callbacks;
	c->callbacks = cb;
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	void	   *p = chunk_alloc(context, size);

	memset(p, 0, size);
	return p;
}

void *
palloc(Size size)
{
	return chunk_alloc(CurrentMemoryContext, size);
}

char *
pstrdup(const char *in)
{
	return pnstrdup(in, strlen(in));
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out = palloc(len + 1);

	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

char *
psprintf(const char *fmt,...)
{
	va_list		args;
	int			n;
	char	   *out;

	va_start(args, fmt);
	n = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	out = palloc(n + 1);
	va_start(args, fmt);
	vsnprintf(out, n + 1, fmt, args);
	va_end(args);
	return out;
}

void
initStringInfo(StringInfo str)
{
	str->maxlen = 1024;
	str->data = palloc(str->maxlen);
	str->len = 0;
	str->data[0] = '\0';
	str->cursor = 0;
}

static void
reserve(StringInfo str, int extra)
{
	if (str->len + extra + 1 > str->maxlen)
	{
		int			newlen = str->maxlen;
		char	   *data;

		while (str->len + extra + 1 > newlen)
			newlen *= 2;
		data = palloc(newlen);
		memcpy(data, str->data, str->len + 1);
		str->data = data;
		str->maxlen = newlen;
	}
}

void
appendStringInfo(StringInfo str, const char *fmt,...)
{
	va_list		args;
	int			n;

	va_start(args, fmt);
	n = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	reserve(str, n);
	va_start(args, fmt);
	vsnprintf(str->data + str->len, n + 1, fmt, args);
	va_end(args);
	str->len += n;
}

void
appendStringInfoString(StringInfo str, const char *s)
{
	int			n = strlen(s);

	reserve(str, n);
	memcpy(str->data + str->len, s, n + 1);
	str->len += n;
}

void
appendStringInfoChar(StringInfo str, char ch)
{
	reserve(str, 1);
	str->data[str->len++] = ch;
	str->data[str->len] = '\0';
}

List *
lappend(List *list, void *datum)
{
	if (list == NIL)
	{
		list = palloc(offsetof(List, initial_elements) + 4 * sizeof(ListCell));
		list->type = T_List;
		list->length = 0;
		list->max_length = 4;
		list->elements = list->initial_elements;
	}
	if (list->length == list->max_length)
	{
		ListCell   *cells = palloc(2 * list->max_length * sizeof(ListCell));

		memcpy(cells, list->elements, list->length * sizeof(ListCell));
		list->elements = cells;
		list->max_length *= 2;
	}
	list->elements[list->length++].ptr_value = datum;
	return list;
}

void
pg_qsort(void *base, size_t nel, size_t elsize, int (*cmp) (const void *, const void *))
{
	qsort(base, nel, elsize, cmp);
}

text *
cstring_to_text_with_len(const char *s, int len)
{
	text	   *t = palloc(VARHDRSZ + len);

	SET_VARSIZE(t, VARHDRSZ + len);
	memcpy(VARDATA(t), s, len);
	return t;
}

text *
cstring_to_text(const char *s)
{
	return cstring_to_text_with_len(s, strlen(s));
}

ArrayType *
construct_array(Datum *elems, int nelems, Oid elmtype, int elmlen, bool elmbyval, char elmalign)
{
	abort();					/* not reached by the parsing code */
}

/*
 * UTF-8 as strictly as PostgreSQL checks it (pg_utf8_islegal): no overlong
 * forms, no surrogates, nothing past U+10FFFF, and no NUL byte.
 */
bool
pg_verify_mbstr(int encoding, const char *mbstr, int len, bool noError)
{
	const unsigned char *s = (const unsigned char *) mbstr;
	int			i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		int			n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 :
			(c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;

		if (c == 0 || n == 0 || i + n > len)
			return false;
		for (int k = 1; k < n; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
		if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) ||
			(c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
			return false;
		i += n;
	}
	return true;
}

const char *
shim_sqlstate_text(int code)
{
	static char buf[6];

	for (int i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(code);
		code >>= 6;
	}
	buf[5] = '\0';
	return buf;
}

char *
pg_any_to_server(const char *s, int len, int encoding)
{
	if (!pg_verify_mbstr(PG_UTF8, s, len, true))
		abort();				/* the backend would raise 22021 here: a bug in our caller */
	return (char *) s;
}

char *
pg_server_to_any(const char *s, int len, int encoding)
{
	return (char *) s;
}

TimestampTz
time_t_to_timestamptz(pg_time_t tm)
{
	return ((TimestampTz) tm - ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) * USECS_PER_SEC;
}

/* ---- ereport ---- */

bool
errstart_cold(int elevel, const char *domain)
{
	pending_elevel = elevel;
	pending_sqlstate = ERRCODE_INTERNAL_ERROR;
	return true;
}

bool
errstart(int elevel, const char *domain)
{
	return errstart_cold(elevel, domain);
}

int
errcode(int sqlerrcode)
{
	pending_sqlstate = sqlerrcode;
	return 0;
}

int
errmsg(const char *fmt,...)
{
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	return 0;
}

int
errdetail(const char *fmt,...)
{
	return 0;
}

int
errhint(const char *fmt,...)
{
	return 0;
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (pending_elevel >= ERROR)
	{
		shim_sqlstate = pending_sqlstate;
		siglongjmp(shim_error_jump, 1);
	}
}

ErrorData *
CopyErrorData(void)
{
	abort();
}

void
FlushErrorState(void)
{
	abort();
}

void
ReThrowError(ErrorData *edata)
{
	abort();
}
