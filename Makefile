# pgtls_admin: TLS and certificate authentication for PostgreSQL, from SQL.
#
# Builds in the source tree (make) or out of it as Debian's pg_buildext does
# (mkdir build && make -C build -f $PWD/Makefile VPATH=$PWD).
EXTENSION  = pgtls_admin
MODULE_big = pgtls_admin
# by layer: base, x509, stores, operations, audit (see include/pgtls_base.h)
OBJS = pgtls_admin.o \
       src/ossl.o src/files.o src/locks.o src/settings.o src/compat.o \
       src/x509_parse.o src/x509_describe.o src/x509_build.o src/x509_csr.o src/crl_der.o src/formats.o \
       src/registry.o src/pending.o src/ca_store.o src/roles.o src/server_config.o \
       src/ca.o src/issue.o src/revoke.o src/install.o src/renew.o \
       src/findings.o src/audit.o src/hba_read.o src/hba_match.o src/hba_audit.o src/hba_shadow.o \
       src/audit_tls.o src/audit_probe.o
# every install and upgrade script (pgtls_admin--1.0.sql, pgtls_admin--1.0--1.1.sql, ...)
DATA = $(patsubst $(srcdir)/%,%,$(wildcard $(srcdir)/pgtls_admin--*.sql))
SCRIPTS = bin/pgtls-client-cert
PGFILEDESC = "pgtls_admin - TLS and certificate authentication from SQL"

REGRESS = setup ca issue cert_info privileges lifecycle formats audit
TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/include -Wall -Wextra -Wno-unused-parameter
ifdef PGTLS_WERROR
PG_CPPFLAGS += -Werror
endif
# libssl/libcrypto exactly as the server links them (as contrib/sslinfo does)
SHLIB_LINK = $(filter -lssl -lcrypto, $(LIBS))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# A server built without OpenSSL (configure --without-ssl) has no libcrypto
# to lend and no TLS to manage: say so instead of failing at load time with
# an undefined symbol.
ifeq (,$(filter clean distclean maintainer-clean,$(MAKECMDGOALS)))
ifeq (,$(filter -lcrypto, $(LIBS)))
$(error pgtls_admin needs a PostgreSQL server built with OpenSSL (configure --with-ssl=openssl), but $(PG_CONFIG) describes one built without it (no -lcrypto in LIBS))
endif
ifneq (yes,$(shell grep -q '^.define USE_OPENSSL 1' '$(includedir_server)/pg_config.h' && echo yes))
$(error pgtls_admin needs a PostgreSQL server built with OpenSSL (configure --with-ssl=openssl), but $(includedir_server)/pg_config.h does not define USE_OPENSSL)
endif
endif

# PGXS does not track header dependencies; every object depends on our headers.
$(OBJS): $(wildcard $(srcdir)/include/*.h)

# PGXS does not create object subdirectories in an out-of-tree build.  A
# phony order-only prerequisite: a directory target named src would be found
# in VPATH (the source tree) and never made here.
.PHONY: pgtls-objdirs
pgtls-objdirs:
	@$(MKDIR_P) src
$(OBJS) $(OBJS:.o=.bc): | pgtls-objdirs
