# bulkhead: build, test, demo, bench, install.
#
#   make demo     install missing Debian packages, build, run the reference incident
#   make check    install missing Debian packages, build with ASan+UBSan, run every test
#   make bench    the speed goals table (bench/run.sh): engine vs floor, bash, xargs
#   make lint     cppcheck + clang-tidy + clang-format check
#   make fuzz     libFuzzer targets (clang), FUZZ_SECONDS each (default 60)
#   make install  PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
DATADIR := $(PREFIX)/share/bulkhead

CC      ?= cc
PKGS    := lua5.4 libuv libcjson libcurl libsodium
# libcurl is opened with dlopen at the first request (engine/effects/net.c says
# why): its headers come from pkg-config, its library is not linked.
LINK_PKGS := lua5.4 libuv libcjson libsodium
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

# pkg-config is only asked when a target compiles: `make deps` must work on
# a machine that has none of the packages yet.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(LINK_PKGS))
CMOCKA_LIBS = $(shell pkg-config --libs cmocka)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wno-unused-parameter
# Includes name their layer ("base/util.h"), from engine/ (docs/design.md).
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -DBH_VERSION='"$(VERSION)"' \
              -DBH_DATADIR='"$(DATADIR)"' $(WARN) -iquote engine $(PKG_CFLAGS)
CFLAGS  ?= -O2 -g
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -DBH_SCHEMA_STRICT \
             -fno-sanitize-recover=undefined

SRCS     := $(sort $(wildcard engine/*/*.c))
HDRS     := $(wildcard engine/*/*.h)
LIB_SRCS := $(filter-out engine/cli/main.c,$(SRCS))
OBJS     := $(SRCS:engine/%.c=build/obj/%.o)
SAN_OBJS := $(SRCS:engine/%.c=build/asan/obj/%.o)
SAN_LIB_OBJS := $(LIB_SRCS:engine/%.c=build/asan/obj/%.o)
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=build/asan/%)
FUZZ_TARGETS := journal params runbook
REPLAY_BINS  := $(FUZZ_TARGETS:%=build/asan/replay_%)
FUZZ_SECONDS ?= 60
# libFuzzer needs clang; only `make fuzz` does (make check replays with gcc).
FUZZ_CC    ?= clang
FUZZ_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
FUZZ_OBJS  := $(LIB_SRCS:engine/%.c=build/fuzz/obj/%.o)

DEB_PKGS := pkg-config gcc make liblua5.4-dev libuv1-dev libcjson-dev libcurl4-openssl-dev \
            libsodium-dev libcmocka-dev jq
# Only `make fuzz` needs clang (libFuzzer ships with it).
FUZZ_PKGS := clang
# Only the tests need these: Debian's Chromium opens the HTML report
# (test_report.sh) in headless mode; script(1) (bsdutils, essential) gives
# the prompt tests a terminal. The plugin tests (test_plugins.sh) start
# their own peers: sshd and ssh (openssh-server, openssh-client), nft in
# network namespaces (nftables, iproute2), a TLS server (openssl). The lab
# (tests/lab/lab, test_lab.sh) adds its hosts' services: python3 for HTTP,
# TCP and webhook services, aiosmtpd (python3-aiosmtpd) for a real SMTP
# server with STARTTLS and AUTH, sudo for the automation account. The
# shipped runbooks run on it (test_runbooks_lab.sh): ansible-core, because
# ransomware-file-servers restores with a real ansible-playbook against the
# lab hosts; postgresql, because customer-data-breach counts its scope with
# psql on a real database (a cluster of the lab host's own; tools/deps.sh
# asks Debian not to make and start one of this machine's).
TEST_PKGS := chromium openssh-server openssh-client nftables iproute2 openssl \
             python3 python3-aiosmtpd sudo ansible-core postgresql

.PHONY: all deps demo check test unit e2e bench lint format install uninstall clean asan fuzz

all: build/bulkhead

build/bulkhead: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS) $(PKG_LIBS) -lm

build/obj/%.o: engine/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

build/asan/bulkhead: $(SAN_OBJS)
	$(CC) $(SAN_FLAGS) -o $@ $(SAN_OBJS) $(PKG_LIBS) -lm

build/asan/obj/%.o: engine/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

build/asan/test_%: tests/unit/test_%.c $(SAN_LIB_OBJS) | build/asan
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -o $@ $< $(SAN_LIB_OBJS) $(PKG_LIBS) $(CMOCKA_LIBS) -lm

build/asan/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(SAN_LIB_OBJS) | build/asan
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -o $@ $< tests/fuzz/replay.c $(SAN_LIB_OBJS) $(PKG_LIBS) -lm

build/fuzz/obj/%.o: engine/%.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) | build/fuzz
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(PKG_LIBS) -lm

build/asan build/fuzz:
	mkdir -p $@

# Test peers (tests/tools): small loopback servers the e2e tests start.
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=build/tools/%)

build/tools/%: tests/tools/%.c | build/tools
	$(CC) -std=c11 -O1 -g -Wall -Wextra -o $@ $<

build/tools:
	mkdir -p $@

asan: build/asan/bulkhead $(UNIT_BINS) $(REPLAY_BINS) $(TOOL_BINS)

# Each target for FUZZ_SECONDS from the saved corpus (new inputs go to
# build/fuzz/corpus, not the repository); a crash is written to
# tests/fuzz/crashes/TARGET/, where `make check` replays it from then on.
fuzz: deps
	@sh tools/deps.sh $(FUZZ_PKGS)
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t tests/fuzz/crashes/$$t; \
	  echo "fuzz $$t for $(FUZZ_SECONDS)s"; \
	  ASAN_OPTIONS=detect_leaks=1 build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=4096 -timeout=30 -artifact_prefix=tests/fuzz/crashes/$$t/ \
	    build/fuzz/corpus/$$t tests/fuzz/corpus/$$t; \
	done

# Installs only what is missing; sudo only when not root and only if needed.
deps:
	@sh tools/deps.sh $(DEB_PKGS)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh examples/demo.sh

check: deps
	@sh tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory asan
	@bash tests/run.sh

# The tests without the package check, for a loop while developing.
test: asan
	@bash tests/run.sh

# The bench's own helpers (bench/*.c): the floor probe, a timer that also
# reports peak RSS (instead of GNU time), and the LD_PRELOAD shim that makes
# an engine without max_memory hold 1 GiB. bench/run.sh builds them itself
# (BULKHEAD may be another engine build).
BENCH_TOOLS := build/bench/floor build/bench/measure build/bench/bigmem.so

build/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -o $@ $<

build/bench/bigmem.so: bench/bigmem.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -shared -fPIC -o $@ $<

bench: deps
	@$(MAKE) -s --no-print-directory all $(BENCH_TOOLS)
	@bash bench/run.sh

lint: build/bulkhead
	sh tools/layers.sh
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem --suppress=missingInclude --std=c11 -D_GNU_SOURCE \
	  -DBH_VERSION='"lint"' -I engine --include=/usr/include/cjson/cJSON.h engine
	clang-tidy --quiet $(SRCS) -- $(BASE_CFLAGS) 2>&1 | { ! grep -E "(warning|error):"; }
	clang-format --dry-run --Werror engine/*/*.c engine/*/*.h tests/unit/*.c tests/fuzz/*.c

format:
	clang-format -i engine/*/*.c engine/*/*.h tests/unit/*.c tests/fuzz/*.c

install: build/bulkhead
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/examples $(DESTDIR)$(DATADIR)/plugins \
	  $(DESTDIR)$(DATADIR)/runbooks
	install -m 0755 build/bulkhead $(DESTDIR)$(BINDIR)/bulkhead
	cp -R examples/. $(DESTDIR)$(DATADIR)/examples/
	install -m 0644 plugins/*.lua $(DESTDIR)$(DATADIR)/plugins/
	cp -R runbooks/. $(DESTDIR)$(DATADIR)/runbooks/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bulkhead
	rm -rf $(DESTDIR)$(DATADIR)

clean:
	rm -rf build tests/out bench/out
