#!/usr/bin/env bash
# deps.sh: installs everything the project needs to build, run and test on Debian 12, so a fresh
# machine needs nothing by hand. Idempotent: each step checks first and is a fast no-op when
# everything is present (the whole script then takes about a second, most of it the toolchain
# probe).
#
#   1. Debian packages: compilers, the C libraries, HAProxy, docker-compose (config checks only),
#      a JDK and Maven (for the Kafka broker and check_manifests.sh's Strimzi check), Go (for
#      FerretDB), python3-venv, clang with its sanitizer and libFuzzer runtimes
#      (libclang-rt-14-dev),
#      Chromium and its chromedriver (the browser e2e test), Node.js (the web client's unit
#      tests, tests/web: node --test, Node 18 or newer), PostgreSQL 15 (FerretDB's backend in
#      the local cluster; scripts/cluster.sh runs its own server, not Debian's service).
#   2. The Apache Kafka broker jars from Maven Central, as listed in deploy/kafka/pom.xml.
#   3. FerretDB (MongoDB wire protocol on PostgreSQL or SQLite) built from its Go module.
#   4. A Python venv with the end-to-end test packages (scripts/e2e-requirements.txt).
#
# Downloads land in ${CHAT_CACHE_DIR:-$HOME/.cache/chat-gateway} so every clone shares them:
#   kafka/libs/        the broker's jars          (stamp: hash of deploy/kafka/pom.xml)
#   ferretdb/ferretdb  the FerretDB binary        (stamp: FerretDB version + build recipe)
#   venv/              the e2e test venv          (stamp: hash of the requirements + python)
# A step whose stamp no longer matches (a version bump) is redone.
#
# Usage: scripts/deps.sh [--check]    (--check: report what is missing, install nothing)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CHAT_CACHE_DIR:-$HOME/.cache/chat-gateway}
export PATH="/usr/local/go/bin:$PATH"

FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION=v1.24.2
# Bump when the way FerretDB is built changes, so existing caches rebuild it.
FERRETDB_RECIPE=1
GO_MIN_MINOR=24 # FerretDB 1.24's go.mod says "go 1.24"

CHECK_ONLY=0
[ "${1:-}" = "--check" ] && CHECK_ONLY=1

say() { echo "==> $*"; }
die() {
	echo "deps.sh: error: $*" >&2
	exit 1
}

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 && SUDO=sudo
fi

sha() { cat "$@" | sha256sum | cut -c1-16; } # of the content, not the path
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# ---------------------------------------------------------------- Debian packages

install_debian_packages() {
	local pkgs=(
		build-essential cmake ninja-build pkg-config
		# libev and libwebsockets' libev plugin: the gateway's epoll event loop
		libwebsockets-dev libwebsockets-evlib-ev libev-dev libjwt-dev librdkafka-dev libmongoc-dev libbson-dev
		libprotobuf-c-dev protobuf-c-compiler libjansson-dev libssl-dev
		# openssl: the local cluster's CA and server certificate (scripts/cluster.sh)
		haproxy docker-compose curl ca-certificates openssl util-linux procps
		# clang builds the fuzzers; its sanitizer and libFuzzer runtimes are a separate package
		# that --no-install-recommends leaves out (clang 14 is Debian 12's).
		clang clang-format libclang-rt-14-dev
		chromium chromium-driver
		# initdb, postgres, pg_isready and psql in /usr/lib/postgresql/15/bin, and the postgres
		# system user the server runs as when cluster.sh runs as root
		postgresql-15
	)
	# the JDK, not just the JRE: check_manifests.sh runs a .java file with java's source
	# launcher, which needs the compiler (jdk.compiler); it includes the JRE the broker needs
	command -v javac >/dev/null 2>&1 || pkgs+=(openjdk-17-jdk-headless)
	command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
	command -v go >/dev/null 2>&1 || pkgs+=(golang)
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	# Extra packages for a one-off need, e.g. CHAT_DEPS_EXTRA_DEBS="kcat gdb".
	# shellcheck disable=SC2206
	pkgs+=(${CHAT_DEPS_EXTRA_DEBS:-})
	if ! command -v python3 >/dev/null 2>&1; then
		pkgs+=(python3 python3-venv)
	elif ! "$(venv_python)" -c 'import ensurepip, venv' >/dev/null 2>&1; then
		pkgs+=(python3-venv)
	fi

	# One dpkg-query for all of them; a package it does not know is simply missing.
	local installed missing=() p
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${pkgs[@]}" 2>/dev/null |
		awk '$2 ~ /^ii/ {sub(/:.*/, "", $1); print $1}' || true)
	for p in "${pkgs[@]}"; do
		grep -qx "$p" <<<"$installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "Debian packages: all present"
		return
	fi
	if [ $CHECK_ONLY = 1 ]; then
		say "Debian packages missing: ${missing[*]}"
		return
	fi
	say "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Update the package lists once, only when something has to be installed.
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The interpreter the venv is made from: Debian's own, where there is one.
venv_python() {
	if [ -n "${CHAT_PYTHON:-}" ]; then
		echo "$CHAT_PYTHON"
	elif [ -x /usr/bin/python3 ]; then
		echo /usr/bin/python3
	else
		command -v python3
	fi
}

# ---------------------------------------------------------------- Kafka broker jars

install_kafka_jars() {
	local pom="$REPO/deploy/kafka/pom.xml" dir="$CACHE/kafka" want
	[ -f "$pom" ] || die "missing $pom"
	want="pom-$(sha "$pom")"
	if stamp_ok "$dir/.installed" "$want" && compgen -G "$dir/libs/kafka_2.13-*.jar" >/dev/null; then
		say "Kafka jars: present ($(basename "$dir"/libs/kafka_2.13-*.jar .jar))"
		return
	fi
	if [ $CHECK_ONLY = 1 ]; then
		say "Kafka jars: missing or outdated"
		return
	fi
	command -v mvn >/dev/null 2>&1 || die "mvn not found (the Debian package maven should have provided it)"
	say "installing Kafka broker jars from Maven Central (about 90 MB, a minute or two) ..."
	mkdir -p "$dir"
	rm -rf "$dir/libs.tmp"
	# -B: no prompts; -q: errors only. Debian's Maven prints stray colour codes even so: its
	# output is shown only when it fails.
	if ! mvn -B -q -f "$pom" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$dir/libs.tmp" >"$dir/mvn.log" 2>&1; then
		sed 's/\x1b\[[0-9;]*m//g' "$dir/mvn.log" | tail -n 40 >&2
		die "mvn could not fetch the Kafka jars (full output: $dir/mvn.log)"
	fi
	compgen -G "$dir/libs.tmp/kafka_2.13-*.jar" >/dev/null || die "no kafka_2.13 jar after mvn"
	rm -rf "$dir/libs"
	mv "$dir/libs.tmp" "$dir/libs"
	echo "$want" >"$dir/.installed"
	say "Kafka jars: $(ls "$dir/libs" | wc -l) jars in $dir/libs"
}

# ---------------------------------------------------------------- FerretDB

install_ferretdb() {
	local dir="$CACHE/ferretdb" want="$FERRETDB_VERSION recipe-$FERRETDB_RECIPE"
	if stamp_ok "$dir/.installed" "$want" && [ -x "$dir/ferretdb" ]; then
		say "FerretDB: present ($FERRETDB_VERSION)"
		return
	fi
	if [ $CHECK_ONLY = 1 ]; then
		say "FerretDB: missing or outdated"
		return
	fi
	command -v go >/dev/null 2>&1 || die "go not found"
	local gover minor
	gover=$(go env GOVERSION)
	minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$gover")
	if ! [[ $minor =~ ^[0-9]+$ ]] || [ "$minor" -lt $GO_MIN_MINOR ]; then
		die "FerretDB $FERRETDB_VERSION needs Go 1.$GO_MIN_MINOR or newer, found $gover ($(command -v go))"
	fi
	say "building FerretDB $FERRETDB_VERSION from the Go module proxy with $gover (a few minutes the first time) ..."
	mkdir -p "$dir"
	# The module as published lacks build/version/version.txt (it is generated from git), and a
	# binary built without it panics at start. Build from a copy of the module with the file
	# written; the copy's go.sum pins every dependency.
	local json moddir src="$dir/src"
	json=$(GOFLAGS=-mod=mod go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION") ||
		die "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed"
	moddir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
	[ -d "$moddir" ] || die "go mod download gave no module directory"
	rm -rf "$src" "$dir/ferretdb.tmp"
	cp -r "$moddir" "$src"
	chmod -R u+w "$src"
	echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
	echo "chat-gateway-deps" >"$src/build/version/package.txt"
	# (Its dependencies come from the Go module proxy; "go: downloading" lines are dropped.)
	(cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
		go build -trimpath -o "$dir/ferretdb.tmp" ./cmd/ferretdb) 2>&1 |
		{ grep -v '^go: downloading' || true; }
	[ -x "$dir/ferretdb.tmp" ] || die "building FerretDB failed"
	"$dir/ferretdb.tmp" --version >/dev/null || die "the FerretDB binary does not start"
	mv "$dir/ferretdb.tmp" "$dir/ferretdb"
	rm -rf "$src"
	echo "$want" >"$dir/.installed"
	say "FerretDB: $("$dir/ferretdb" --version 2>&1 | head -1)"
}

# ---------------------------------------------------------------- Python venv

install_venv() {
	local req="$REPO/scripts/e2e-requirements.txt" dir="$CACHE/venv" py want
	py=$(venv_python)
	want="req-$(sha "$req") $("$py" -c 'import sys; print("py%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)"
	if stamp_ok "$dir/.installed" "$want" && [ -x "$dir/bin/python" ]; then
		say "Python venv: present ($dir)"
		return
	fi
	if [ $CHECK_ONLY = 1 ]; then
		say "Python venv: missing or outdated"
		return
	fi
	# An existing venv from the same Python is updated in place (pip installs the pins over
	# what is there); otherwise it is made anew.
	local pyver
	pyver=${want##* }
	if [ -x "$dir/bin/python" ] && [ "$("$dir/bin/python" -c 'import sys; print("py%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$pyver" ]; then
		say "updating the Python venv for the e2e tests ($dir) ..."
	else
		say "creating the Python venv for the e2e tests ($py) ..."
		rm -rf "$dir"
		"$py" -m venv "$dir" || die "python3 -m venv failed (is python3-venv installed?)"
	fi
	"$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req" ||
		die "pip install -r $req failed"
	echo "$want" >"$dir/.installed"
	say "Python venv: $("$dir/bin/python" -m pip freeze 2>/dev/null | grep -iE '^(pytest|websockets|pymongo)==' | tr '\n' ' ')"
}

# ---------------------------------------------------------------- toolchain probe

# Every way the project compiles (release with gcc, ASan+UBSan with gcc, libFuzzer with clang)
# links a tiny program here, so that a package the toolchain needs but the list above lacks
# fails now, naming the package, not in the middle of `make test`.
probe_toolchains() {
	local dir out
	dir=$(mktemp -d)
	printf 'int main(void){return 0;}\n' >"$dir/main.c"
	printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n){(void)d;(void)n;return 0;}\n' >"$dir/fuzz.c"
	probe() { # probe WHAT PACKAGES COMMAND...
		local what=$1 pkgs=$2
		shift 2
		if ! out=$("$@" 2>&1); then
			rm -rf "$dir"
			echo "$out" | tail -n 5 >&2
			die "the toolchain cannot build $what (Debian packages it needs: $pkgs)"
		fi
	}
	probe "the release tree" "build-essential" cc -o "$dir/a" "$dir/main.c"
	probe "the sanitizer tree" "build-essential (libasan, libubsan)" \
		cc -fsanitize=address,undefined -o "$dir/b" "$dir/main.c"
	probe "the fuzzers" "clang libclang-rt-14-dev" \
		clang -fsanitize=fuzzer,address,undefined -o "$dir/c" "$dir/fuzz.c"
	rm -rf "$dir"
	say "toolchains: gcc, gcc+ASan/UBSan and clang+libFuzzer link"
}

# ----------------------------------------------------------------

mkdir -p "$CACHE"
# Two clones running deps.sh at once share the cache: take turns.
exec 9>"$CACHE/.deps.lock"
flock 9

install_debian_packages
[ $CHECK_ONLY = 1 ] || probe_toolchains
install_kafka_jars
install_ferretdb
install_venv

{
	echo "# written by scripts/deps.sh; what is installed in this cache"
	echo "kafka=$(basename "$(ls "$CACHE"/kafka/libs/kafka_2.13-*.jar 2>/dev/null | head -1)" .jar)"
	echo "ferretdb=$(cat "$CACHE/ferretdb/.installed" 2>/dev/null)"
	echo "venv=$(cat "$CACHE/venv/.installed" 2>/dev/null)"
} >"$CACHE/versions.txt"
say "dependencies ready (cache: $CACHE)"
