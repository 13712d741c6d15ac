#!/usr/bin/env bash
# test.sh: everything `make test` and CI (.ci/run) check, in order, on this machine:
#
#   1. scripts/deps.sh                 install what is missing (fast when nothing is)
#   2. make build-release build-asan   build/ and build-asan/
#   3. static checks                   haproxy -c on deploy/haproxy/haproxy.cfg, docker-compose
#                                      config -q, bash -n on the scripts, and
#                                      tests/deploy/check_manifests.sh when present
#   4. ctest in build/ and build-asan/ the unit tests, each tree (ctest prints its own summary)
#   5. fuzz smoke                      each libFuzzer target for CHAT_FUZZ_SECONDS (default 15;
#                                      0 skips), built in build-fuzz/ with clang, from its seeds
#                                      in tests/fuzz/corpus/<target>/ (tests/fuzz/make_seeds.py)
#   6. node --test tests/web/          the web client's protocol modules (gateway/web/
#                                      chat-client.js, chat-state.js) against a fake WebSocket
#                                      and clock; no build needed
#   7. pytest tests/e2e                the end-to-end tests: their conftest starts a throwaway
#                                      cluster (scripts/cluster.sh up) from build-asan/ on the
#                                      test ports, and stops it at the end
#   8. pytest tests/faults             the fault tests: their own cluster with three Kafka
#                                      brokers (CHAT_KAFKA_NODES=3, ports 30 above the e2e ones),
#                                      where a broker, a gateway, the persister or the store
#                                      fails while messages stream (3.5 to 4.5 minutes on a
#                                      2-core machine: the store stays down 60 s, the rolling
#                                      restart of the three brokers takes 35 to 80 s). They run when
#                                      CHAT_FAULT_TESTS=1, never with 0; by default (auto) when
#                                      the machine can afford three more JVMs: at least 2 cores
#                                      and 4 GiB of available memory (each broker takes 300 to
#                                      450 MiB). The end-to-end cluster is down by then, so the
#                                      two never run at once; with them, `make test` takes about
#                                      9 minutes instead of 5
#
# A failing step does not stop the later ones that do not depend on it; the exit status is
# non-zero when anything failed, and the last lines name what failed.
#
# Usage: scripts/test.sh [--fuzz-only]
# Environment: CHAT_CACHE_DIR (as deps.sh), CHAT_FUZZ_SECONDS, CHAT_E2E_ARGS (extra pytest
# arguments, e.g. "-k persister -x"), CHAT_FAULT_TESTS (auto, 1 or 0: step 8),
# CHAT_FAULTS_ARGS (extra pytest arguments for step 8), JOBS (parallel compile jobs).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
CACHE=${CHAT_CACHE_DIR:-$HOME/.cache/chat-gateway}
MAKE=${MAKE:-make}
FUZZ_SECONDS=${CHAT_FUZZ_SECONDS:-15}
export PATH="/usr/local/go/bin:$PATH"

FAILED=()
PASSED=()
T_START=$SECONDS

stage() {
	STAGE=$1
	STAGE_T0=$SECONDS
	echo
	echo "==> [test.sh] $1"
}
ok() {
	PASSED+=("$STAGE")
	echo "==> [test.sh] $STAGE: ok ($((SECONDS - STAGE_T0))s)"
}
failed() {
	FAILED+=("$STAGE")
	echo "==> [test.sh] $STAGE: FAILED ($((SECONDS - STAGE_T0))s)${1:+: $1}"
}
check() { # check CMD...: runs CMD, records the stage's result
	if "$@"; then ok; else failed; fi
}

finish() {
	echo
	echo "==> [test.sh] done in $((SECONDS - T_START))s; ok: ${PASSED[*]:-none}"
	if [ ${#FAILED[@]} -gt 0 ]; then
		echo "==> [test.sh] FAILED: ${FAILED[*]}"
		exit 1
	fi
	echo "==> [test.sh] all steps passed"
	exit 0
}

# ---------------------------------------------------------------- fuzz smoke

fuzz_smoke() {
	if [ "$FUZZ_SECONDS" = 0 ]; then
		echo "skipped (CHAT_FUZZ_SECONDS=0)"
		return 0
	fi
	if ! command -v clang >/dev/null 2>&1; then
		echo "skipped: no clang"
		return 0
	fi
	if ! compgen -G "tests/fuzz/fuzz_*.c" >/dev/null; then
		echo "skipped: no tests/fuzz/fuzz_*.c"
		return 0
	fi
	"$MAKE" --no-print-directory build-fuzz || return 1
	local f name corpus work rc=0
	work=$(mktemp -d)
	for f in build-fuzz/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		name=$(basename "$f")
		mkdir -p "$work/$name"
		corpus=()
		# Seeds are read, never written: new inputs go to the scratch directory first in the list.
		[ -d "tests/fuzz/corpus/$name" ] && corpus=("tests/fuzz/corpus/$name")
		echo "--- $name for ${FUZZ_SECONDS}s"
		if ! "$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=0 -artifact_prefix="$work/$name-" "$work/$name" "${corpus[@]}" \
			>"$work/$name.log" 2>&1; then
			rc=1
			tail -n 40 "$work/$name.log"
			echo "--- $name FAILED; the crashing input:"
			ls "$work/$name-"* 2>/dev/null
			mkdir -p "$REPO/build-fuzz/artifacts"
			cp "$work/$name-"* "$REPO/build-fuzz/artifacts/" 2>/dev/null &&
				echo "(copied to build-fuzz/artifacts/)"
		else
			grep -E '^#[0-9]+.*DONE' "$work/$name.log" | tail -n 1
		fi
	done
	rm -rf "$work"
	return $rc
}

if [ "${1:-}" = --fuzz-only ]; then
	stage "fuzz smoke"
	check fuzz_smoke
	finish
fi

# ---------------------------------------------------------------- 1. deps

stage "deps"
if scripts/deps.sh; then ok; else
	failed "cannot go on without the dependencies"
	finish
fi

# ---------------------------------------------------------------- 2. build

stage "build"
BUILT=1
if "$MAKE" --no-print-directory build-release build-asan JOBS="${JOBS:-$(nproc)}"; then ok; else
	failed
	BUILT=0
fi

# ---------------------------------------------------------------- 3. static checks

static_checks() {
	local rc=0 f
	echo "--- haproxy -c -f deploy/haproxy/haproxy.cfg"
	CHAT_PUBLIC_BIND=127.0.0.1:8080 CHAT_STATS_BIND=127.0.0.1:8404 \
		CHAT_GW1_ADDR=127.0.0.1:8081 CHAT_GW2_ADDR=127.0.0.1:8082 \
		haproxy -c -f deploy/haproxy/haproxy.cfg || rc=1
	if [ -f docker-compose.yml ]; then
		echo "--- docker-compose config -q"
		docker-compose -f docker-compose.yml config -q || rc=1
	fi
	echo "--- bash -n scripts/*.sh .ci/run"
	for f in scripts/*.sh .ci/run; do
		[ -f "$f" ] || continue
		bash -n "$f" || rc=1
	done
	if [ -x tests/deploy/check_manifests.sh ] || [ -f tests/deploy/check_manifests.sh ]; then
		echo "--- tests/deploy/check_manifests.sh"
		bash tests/deploy/check_manifests.sh || rc=1
	fi
	return $rc
}
stage "static checks"
check static_checks

# ---------------------------------------------------------------- 4. unit tests

for tree in build build-asan; do
	stage "ctest $tree"
	if [ $BUILT = 0 ] || [ ! -f "$tree/CTestTestfile.cmake" ]; then
		failed "not built"
		continue
	fi
	(cd "$tree" && ctest --output-on-failure --timeout 300 -j "$(nproc)")
	rc=$?
	if [ $rc -eq 0 ]; then ok; else failed "ctest exit $rc"; fi
done

# ---------------------------------------------------------------- 5. fuzz smoke

stage "fuzz smoke"
check fuzz_smoke

# ---------------------------------------------------------------- 6. web client unit tests

stage "web unit tests"
if ! command -v node >/dev/null 2>&1; then
	failed "no node (scripts/deps.sh installs Debian's nodejs)"
else
	echo "--- node $(node --version) --test tests/web/"
	# the runner prints its own summary (tests, pass, fail); a failure's details come first
	node --test tests/web/
	rc=$?
	if [ $rc -eq 0 ]; then ok; else failed "node --test exit $rc"; fi
fi

# ---------------------------------------------------------------- 7. end-to-end

stage "e2e"
if [ $BUILT = 0 ]; then
	failed "not built"
elif [ ! -d tests/e2e ]; then
	failed "no tests/e2e"
else
	# shellcheck disable=SC2086
	"$CACHE/venv/bin/python" -m pytest -v tests/e2e ${CHAT_E2E_ARGS:-}
	rc=$?
	case $rc in
	0) ok ;;
	5) failed "pytest collected no tests" ;;
	*) failed "pytest exit $rc" ;;
	esac
fi

# ---------------------------------------------------------------- 8. fault tests

# Whether the fault tests run (step 8 above): prints the reason when they do not.
fault_tests_wanted() {
	local want=${CHAT_FAULT_TESTS:-auto} mem cores
	case "$want" in
	1 | yes | true | on) return 0 ;;
	0 | no | false | off)
		echo "skipped (CHAT_FAULT_TESTS=$want)"
		return 1
		;;
	auto) ;;
	*)
		echo "CHAT_FAULT_TESTS='$want' is not auto, 1 or 0: running them"
		return 0
		;;
	esac
	mem=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo 2>/dev/null || echo 0)
	cores=$(nproc 2>/dev/null || echo 1)
	if [ "$cores" -lt 2 ] || [ "$mem" -lt 4096 ]; then
		echo "skipped: $cores core(s) and ${mem} MiB available; three brokers need 2 cores and" \
			"4096 MiB (CHAT_FAULT_TESTS=1 runs them anyway)"
		return 1
	fi
	return 0
}

stage "fault tests"
if [ $BUILT = 0 ]; then
	failed "not built"
elif [ ! -d tests/faults ]; then
	failed "no tests/faults"
elif fault_tests_wanted; then
	# shellcheck disable=SC2086
	"$CACHE/venv/bin/python" -m pytest -v -s tests/faults ${CHAT_FAULTS_ARGS:-}
	rc=$?
	case $rc in
	0) ok ;;
	5) failed "pytest collected no tests" ;;
	*) failed "pytest exit $rc" ;;
	esac
else
	ok
fi

finish
