# mod_websession -- build, test, demo.
#
#   make            build .libs/mod_websession.so with apxs
#   make test       install what is missing, build, run every test
#   make demo       install what is missing, build, run a private Apache on PORT (8080)
#   make unit       C unit tests under AddressSanitizer
#   make asan       a second build of the module under ASan + UBSan, in build/asan/
#   make asan-test  the Apache::Test suite against that build (part of make test)
#   make fuzz       run the fuzzers for FUZZ_SECONDS each (default 60)
#   make install    install the module and Debian's websession.load/.conf
#   make deb        the Debian package (build/deb/*.deb), checked by lintian
#   make npm-pack   the browser library as an npm package (build/npm/*.tgz)
#   make types      tsc checks client/websession.d.ts against client/types-test/
#   make bench      benchmarks against websocketd, mod_proxy, mod_lua, TCP (bench/results.md)
#   make bench-newsessions  new-session latency, scripts in their own session or group
#   make mutate     the mutation campaigns, C and JS (make mutate-c, make mutate-js;
#                   tools/mutate, tools/mutate-js; not part of make test)

APXS      ?= apxs
LIBEXECDIR = $(shell $(APXS) -q LIBEXECDIR)
CC        ?= cc
PORT      ?= 8080
FUZZ_SECONDS ?= 60
SMOKE_SECONDS ?= 10

APR_CFLAGS := $(shell apr-1-config --cppflags --includes 2>/dev/null) \
              $(shell apu-1-config --includes 2>/dev/null)
APR_LIBS   := $(shell apr-1-config --link-ld 2>/dev/null) \
              $(shell apu-1-config --link-ld 2>/dev/null)

BUILD     := build
WARN      := -Wall -Wextra -Werror
STD       := -std=c11 -D_GNU_SOURCE

# Pure logic (no I/O): unit-tested and fuzzed on its own.
PURE_SRCS := ws_codec.c msg_format.c session_table.c ws_handshake.c sendq.c bytebuf.c wsv1.c sse.c \
             exit_status.c ipc_reader.c flow.c timers.c session_state.c refusals.c
# Everything that makes the module.
MOD_SRCS  := mod_websession.c $(PURE_SRCS) ipc.c spawner.c keeper.c keeper_state.c keeper_client.c keeper_v1.c \
             keeper_http.c keeper_ipc.c keeper_script.c pool.c relay.c fallback.c \
             client_handler.c status.c $(BUILD)/client_js.c
HDRS      := $(wildcard *.h)


.PHONY: all deps test unit fuzz fuzz-smoke apache-test asan asan-test demo install clean bench bench-quick \
        bench-newsessions \
        mutate mutate-c mutate-js

all: .libs/mod_websession.so

# The browser library is built into the module (SetHandler websession-client).
$(BUILD)/client_js.c: client/websession.js tools/embed.pl | $(BUILD)
	tools/embed.pl ws_client_js $< $@

# SCRIPT_SETSID=1 is for `bench/run newsessions` only, which builds copies
# of the tree both ways: each script in a session of its own (setsid, as
# before) against the product's own process group in the keeper's session.
# The .so does not depend on the variable: do not use it in a tree you use.
SCRIPT_SETSID ?=
.libs/mod_websession.so: $(MOD_SRCS) $(HDRS)
	$(APXS) -c -o mod_websession.la $(addprefix -Wc$(comma),$(STD) $(WARN)) \
	    $(if $(filter 1,$(SCRIPT_SETSID)),-Wc$(comma)-DKEEPER_SCRIPT_SETSID) \
	    $(MOD_SRCS) -laprutil-1 >$(BUILD)/apxs.log

comma := ,

deps:
	tools/install-deps.sh

# ---- C unit tests (AddressSanitizer + UndefinedBehaviorSanitizer) --------
UNIT_TESTS := $(patsubst tests/%.c,$(BUILD)/%,$(wildcard tests/test_*.c))
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -g -O1

$(BUILD)/test_%: tests/test_%.c tests/unit.h $(PURE_SRCS) $(HDRS) | $(BUILD)
	$(CC) $(STD) $(WARN) $(SAN) -I. $(APR_CFLAGS) -o $@ $< $(PURE_SRCS) $(APR_LIBS)

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t; done
	tools/check-log-ids
	tools/mutate --check

# ---- fuzzing (libFuzzer) -------------------------------------------------
FUZZERS   := $(patsubst fuzz/%.c,$(BUILD)/%,$(wildcard fuzz/fuzz_*.c))
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -g -O1

$(BUILD)/fuzz_%: fuzz/fuzz_%.c $(PURE_SRCS) $(HDRS) | $(BUILD)
	clang $(STD) $(WARN) $(FUZZ_FLAGS) -I. $(APR_CFLAGS) -o $@ $< $(PURE_SRCS) $(APR_LIBS)

fuzz: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p $(BUILD)/corpus/$$n; \
	    echo "== $$n for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/corpus/$$n fuzz/seeds/$$n; done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$(SMOKE_SECONDS)

$(BUILD):
	mkdir -p $@

# ---- the module under AddressSanitizer + UBSan ------------------------------
# A second copy of the module, built with the unit tests' sanitizer flags into
# build/asan/ (objects and .so; .libs/mod_websession.so is left alone): the
# compiler, defines and include paths apxs uses, minus _FORTIFY_SOURCE (ASan
# checks the same calls itself, more precisely).
ASAN_DIR   := $(BUILD)/asan
ASAN_SO    := $(ASAN_DIR)/mod_websession.so
ASAN_OBJS  := $(patsubst %.c,$(ASAN_DIR)/obj/%.o,$(notdir $(MOD_SRCS)))
# (apxs is asked once, and only when these are used.)
ASAN_CC     = $(eval ASAN_CC := $(shell $(APXS) -q CC))$(ASAN_CC)
ASAN_CFLAGS = $(eval ASAN_CFLAGS := -fPIC -pipe $(STD) $(WARN) $(SAN) \
              $(shell $(APXS) -q EXTRA_CPPFLAGS) -I$(shell $(APXS) -q INCLUDEDIR) \
              $(APR_CFLAGS) -I.)$(ASAN_CFLAGS)

$(ASAN_DIR)/obj/%.o: %.c $(HDRS) | $(ASAN_DIR)/obj
	$(ASAN_CC) $(ASAN_CFLAGS) -c -o $@ $<

$(ASAN_DIR)/obj/%.o: $(BUILD)/%.c | $(ASAN_DIR)/obj
	$(ASAN_CC) $(ASAN_CFLAGS) -c -o $@ $<

# t/setup/asan_exit.c: a leak check before the spawner's and keepers' _exit
# (keeper_main is wrapped to tell a keeper from the script child it forks).
$(ASAN_DIR)/obj/asan_exit.o: t/setup/asan_exit.c $(HDRS) | $(ASAN_DIR)/obj
	$(ASAN_CC) $(ASAN_CFLAGS) -c -o $@ $<

$(ASAN_SO): $(ASAN_OBJS) $(ASAN_DIR)/obj/asan_exit.o
	$(ASAN_CC) -shared $(SAN) -Wl,--as-needed -Wl,--wrap=_exit -Wl,--wrap=keeper_main -o $@ $^ -laprutil-1

$(ASAN_DIR)/obj:
	mkdir -p $@

asan: $(ASAN_SO)

# ---- Apache::Test suite --------------------------------------------------
# A skipped test file or assertion fails this target (t/run-suite names each
# with its reason): everything the suite needs is installed by `make deps`.
# `make apache-test WEBSESSION_REQUIRE_ALL=0`, or t/run-suite run by hand,
# allows skips.
WEBSESSION_REQUIRE_ALL ?= 1
apache-test: all
	WEBSESSION_REQUIRE_ALL=$(WEBSESSION_REQUIRE_ALL) t/run-suite

# The same suite against the module built under ASan + UBSan (build/asan/):
# t/run-asan fails on a test failure and on any sanitizer report from the
# handler in httpd's workers, the spawner or a keeper (and on a leak in the
# spawner or a keeper). ASAN_FILES: some t/*.t only (default all of them).
ASAN_FILES ?=
asan-test: asan
	APXS=$(APXS) WEBSESSION_REQUIRE_ALL=$(WEBSESSION_REQUIRE_ALL) t/run-asan $(ASAN_FILES)

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) fuzz-smoke
	$(MAKE) apache-test
	$(MAKE) asan-test

# ---- mutation testing of the browser library -----------------------------
# Stryker mutates client/websession.js and runs the Node unit tests on the
# fakes against each mutant (about 10 minutes on 2 cores); fails when a
# survivor is not a listed equivalent in tools/mutants/js-equivalent.json.
# Not part of `make test`.
mutate-js: deps
	tools/mutate-js

demo: deps all
	PORT=$(PORT) demo/run

# ---- mutation testing ------------------------------------------------------
# Plants the bugs of tools/mutants/c.txt one at a time in a scratch copy
# (build/mutate/) and runs the tests that should catch each; fails on a
# survivor the list does not explain.  Too slow for make test: run it before
# changing the code it covers.  MUTATE_ARGS: e.g. --no-full, --only name.
# Both run even if one fails; either failing fails the target.
mutate:
	@status=0; $(MAKE) mutate-c || status=1; $(MAKE) mutate-js || status=1; exit $$status

mutate-c: deps
	tools/mutate $(MUTATE_ARGS)

# ---- benchmarks ------------------------------------------------------------
# Against the peers (as root, about 4-5 minutes): bench/run starts every
# server itself and rewrites bench/results.md and bench/results.json.
bench: deps all
	bench/run

# About a minute; results go to build/bench, not to the committed files.
bench-quick: all
	QUICK=1 BENCH_OUT=$(BUILD)/bench bench/run

# New sessions with both cores busy: scripts started with setsid against
# setpgid (two builds of this tree) and websocketd, in interleaved rounds
# (as root, about 2 minutes); the report goes to stdout and build/bench.
bench-newsessions: deps
	BENCH_OUT=$(BUILD)/bench bench/run newsessions

install: all
	install -d $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)/etc/apache2/mods-available
	$(APXS) -i -S LIBEXECDIR=$(DESTDIR)$(LIBEXECDIR) -n websession mod_websession.la
	install -m 644 debian/websession.load $(DESTDIR)/etc/apache2/mods-available/websession.load
	install -m 644 websession.conf $(DESTDIR)/etc/apache2/mods-available/websession.conf

# ---- packages ----------------------------------------------------------------
# The Debian binary package libapache2-mod-websession: tools/build-deb copies
# the tree to build/deb/ and runs dpkg-buildpackage -us -uc -b there, so its
# outputs (written next to the tree it builds) stay under build/deb/; then
# lintian, which fails the target on an error. t/75_deb_package.t runs it.
.PHONY: deb npm-pack types
deb: deps
	tools/build-deb $(BUILD)/deb

# The browser library as the npm package websession-client (client/package.json).
npm-pack: | $(BUILD)
	rm -rf $(BUILD)/npm && mkdir -p $(BUILD)/npm
	cd client && npm pack --pack-destination ../$(BUILD)/npm

# tsc (typescript from package-lock.json) on the typed example that uses every
# declaration of client/websession.d.ts.
types:
	node_modules/.bin/tsc --noEmit -p client/types-test

clean:
	rm -rf $(BUILD) .libs *.la *.lo *.o *.slo
	-[ -f t/TEST ] && t/TEST -clean >/dev/null 2>&1 || true
