# Makefile: the user-facing commands. The work is done by scripts/ and CMake; this file only
# strings them together.
#
#   make run         install what is missing, build, start the local cluster in the foreground
#                    (http://127.0.0.1:8080/; Ctrl-C stops it)
#   make test        everything CI runs: deps, both builds, static checks, unit tests in both
#                    trees, a short fuzz run, the end-to-end tests (scripts/test.sh)
#   make build       deps, then build/ (RelWithDebInfo) and build-asan/ (ASan + UBSan)
#   make fuzz        build the libFuzzer targets in build-fuzz/ (clang) and run each briefly
#                    from its seed corpus (tests/fuzz/corpus/<target>/)
#   make deps        only scripts/deps.sh
#   make bench       the load generator's scenarios against a throwaway cluster (scripts/bench.sh):
#                    a table and bench-results.json; BENCH="fanout-100x100 idle-10k" runs some
#   make bench-store history reads against a store of 1,000,000 messages (in the database
#                    chat_bench of the running local cluster's FerretDB; the first run fills it,
#                    a few minutes); BENCH_STORE_ARGS passes options, e.g. "--messages 100000"
#   make clean-data  delete the local cluster's data and logs (.data/); refuses while it runs
#   make clean       delete the build trees
#
# Variables: JOBS (parallel compile jobs, default: number of CPUs), FUZZ_SECONDS (per fuzzer,
# default 30), CMAKE_ARGS (extra configure arguments for both trees).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 30
CMAKE_ARGS ?=
# Where ninja is, CMake uses it (decided when a tree is first configured).
GENERATOR = $$(command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

# configure_and_build DIR ARGS: configure DIR (again, cheaply, so changed ARGS apply) and build.
define configure_and_build
	@echo "==> building $(1)/"
	@if [ -f $(1)/CMakeCache.txt ]; then \
		cmake -S . -B $(1) $(2) $(CMAKE_ARGS) >/dev/null; \
	else \
		cmake -S . -B $(1) $(GENERATOR) $(2) $(CMAKE_ARGS); \
	fi
	cmake --build $(1) --parallel $(JOBS)
endef

.PHONY: all deps build build-release build-asan build-fuzz fuzz run test bench bench-store clean-data clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@$(MAKE) --no-print-directory build-release build-asan

build-release:
	$(call configure_and_build,build,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHAT_SANITIZE=OFF)

build-asan:
	$(call configure_and_build,build-asan,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHAT_SANITIZE=ON)

build-fuzz:
	$(call configure_and_build,build-fuzz,-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHAT_FUZZ=ON)

fuzz: deps build-fuzz
	@CHAT_FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/test.sh --fuzz-only

# The local cluster needs only the release tree.
run: deps
	@$(MAKE) --no-print-directory build-release
	scripts/cluster.sh run

test:
	scripts/test.sh

BENCH ?=
bench: deps
	@$(MAKE) --no-print-directory build-release
	scripts/bench.sh $(BENCH)

BENCH_STORE_ARGS ?=
bench-store: deps
	$${CHAT_CACHE_DIR:-$$HOME/.cache/chat-gateway}/venv/bin/python tests/bench/store_read.py $(BENCH_STORE_ARGS)

clean-data:
	@if CHAT_DATA_DIR=$(CURDIR)/.data scripts/cluster.sh status 2>/dev/null | grep -q 'running (pid'; then \
		echo "make clean-data: the local cluster in .data is running; stop it first (scripts/cluster.sh down)" >&2; \
		exit 1; \
	fi
	@# PostgreSQL's data lives elsewhere when its user could not reach .data (scripts/cluster.sh)
	if [ -L .data/postgres ]; then rm -rf "$$(readlink -f .data/postgres)"; fi
	rm -rf .data

clean:
	rm -rf build build-asan build-fuzz
