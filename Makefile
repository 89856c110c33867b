# pgtls_admin: TLS and certificate authentication for PostgreSQL, from SQL.
EXTENSION  = pgtls_admin
MODULE_big = pgtls_admin
# by layer: base, x509, stores, operations, audit (see include/pgtls_base.h)
OBJS = pgtls_admin.o \
       src/ossl.o src/files.o src/locks.o src/settings.o src/compat.o \
       src/x509_parse.o src/x509_describe.o src/x509_build.o src/x509_csr.o src/crl_der.o src/formats.o \
       src/registry.o src/pending.o src/ca_store.o src/roles.o src/server_config.o \
       src/ca.o src/issue.o src/revoke.o src/install.o src/renew.o \
       src/findings.o src/audit.o src/hba_read.o src/hba_match.o src/hba_audit.o src/hba_shadow.o src/hba_ident.o src/hba_admit.o src/hba_ident_audit.o \
       src/audit_tls.o src/audit_probe.o src/audit_handshake.o src/audit_crl.o src/audit_login.o
DATA = pgtls_admin--1.0.sql
SCRIPTS = bin/pgtls-client-cert
PGFILEDESC = "pgtls_admin - TLS and certificate authentication from SQL"

REGRESS = setup ca issue cert_info privileges lifecycle formats audit
TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/include -Wall -Wextra -Wno-unused-parameter
ifdef PGTLS_WERROR
PG_CPPFLAGS += -Werror
endif
# libssl for the audit's handshakes with the server's own SSL_CTX, as contrib/sslinfo links it
SHLIB_LINK += $(filter -lssl -lcrypto, $(LIBS))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies; every object depends on our headers.
$(OBJS): $(wildcard $(srcdir)/include/*.h)
