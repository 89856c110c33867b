# pgtls_admin: TLS and certificate authentication for PostgreSQL, from SQL.
#
# Builds in the source tree (make) or out of it as Debian's pg_buildext does
# (mkdir build && make -C build -f $PWD/Makefile VPATH=$PWD).
EXTENSION  = pgtls_admin
MODULE_big = pgtls_admin
# by layer: base, x509, stores, operations, audit (see include/pgtls_base.h)
OBJS = pgtls_admin.o \
       src/ossl.o src/files.o src/locks.o src/settings.o src/session.o src/compat.o \
       src/x509_parse.o src/x509_describe.o src/x509_build.o src/x509_csr.o src/crl_der.o src/formats.o \
       src/registry.o src/journal.o src/statement.o src/pending.o src/live.o src/cluster.o src/ca_store.o src/ca_keyring.o src/roles.o src/server_config.o \
       src/ca.o src/issue.o src/revoke.o src/refresh.o src/install.o src/renew.o \
       src/trust.o src/trust_cas.o src/ca_states.o src/ca_rotate.o src/ca_intermediate.o \
       src/enforce.o src/worker.o src/notify.o src/maintain.o src/renew_self.o src/sessions.o \
       src/findings.o src/audit.o src/hba_read.o src/hba_match.o src/hba_audit.o src/hba_shadow.o \
       src/hba_ident.o src/hba_admit.o src/hba_ident_audit.o \
       src/audit_tls.o src/audit_probe.o src/audit_handshake.o src/audit_crl.o src/audit_login.o src/audit_ca.o src/metrics.o
# every install and upgrade script (pgtls_admin--1.0.sql, pgtls_admin--1.0--1.1.sql, ...)
DATA = $(patsubst $(srcdir)/%,%,$(wildcard $(srcdir)/pgtls_admin--*.sql))
SCRIPTS = bin/pgtls-client-cert
PGFILEDESC = "pgtls_admin - TLS and certificate authentication from SQL"

# Suites that run on any server: make installcheck, twice on the same cluster
# if need be (they leave no role, extension or CA behind).
REGRESS = setup ca issue cert_info privileges lifecycle maintain rotation formats metrics cleanup
TAP_TESTS = 1
# Suites that need the server set up as sql/temp_instance.conf says (the fixed
# pg_hba.conf of sql/hba/, ssl off) or that create roles whose names cannot
# start with regress_: like pg_stat_statements' NO_INSTALLCHECK suites, make
# installcheck does not run them.  make tempcheck runs them in a temporary
# instance; make installcheck-temp against a server already set up so.
REGRESS_TEMP = setup audit role_names cleanup

PG_CPPFLAGS = -I$(srcdir)/include -Wall -Wextra -Wno-unused-parameter
ifdef PGTLS_WERROR
PG_CPPFLAGS += -Werror
endif
# libssl/libcrypto exactly as the server links them (as contrib/sslinfo does)
SHLIB_LINK = $(filter -lssl -lcrypto, $(LIBS))

EXTRA_CLEAN = tmp_check_temp/

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

# REGRESS_TEMP in a temporary instance that pg_regress creates with the
# installed binaries and sql/temp_instance.conf (hba_file points at sql/hba/).
.PHONY: tempcheck installcheck-temp
tempcheck: submake
	@$(MKDIR_P) tmp_check_temp
	sed 's,@HBA_DIR@,$(abspath $(srcdir))/sql/hba,' $(srcdir)/sql/temp_instance.conf >tmp_check_temp/temp.conf
	$(pg_regress_installcheck) $(REGRESS_OPTS) --outputdir=tmp_check_temp \
		--temp-instance=tmp_check_temp/instance --temp-config=tmp_check_temp/temp.conf $(REGRESS_TEMP)

installcheck-temp: submake
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS_TEMP)
