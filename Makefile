# pgtls_admin: TLS and certificate authentication for PostgreSQL, from SQL.
EXTENSION  = pgtls_admin
MODULE_big = pgtls_admin
OBJS = pgtls_admin.o src/ossl.o src/files.o src/roles.o src/cert_info.o \
       src/ca.o src/issue.o src/registry.o src/server.o src/crl.o src/csr.o src/formats.o \
       src/audit.o src/audit_tls.o src/hba.o
DATA = pgtls_admin--1.0.sql
SCRIPTS = bin/pgtls-client-cert
PGFILEDESC = "pgtls_admin - TLS and certificate authentication from SQL"

REGRESS = setup ca issue cert_info privileges lifecycle formats audit
TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/include -Wall -Wextra -Wno-unused-parameter
ifdef PGTLS_WERROR
PG_CPPFLAGS += -Werror
endif
SHLIB_LINK = -lcrypto

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies; every object depends on our headers.
$(OBJS): $(wildcard $(srcdir)/include/*.h)
