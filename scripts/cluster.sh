#!/usr/bin/env bash
# cluster.sh: starts and stops a whole chat cluster on this machine, every process on 127.0.0.1:
# Kafka (KRaft: one node, or CHAT_KAFKA_NODES combined broker+controller nodes), FerretDB (MongoDB wire protocol) on a private PostgreSQL 15 server,
# N gateways, the persister and HAProxy in front of the gateways. `make run` uses it with the
# default ports, the end-to-end tests with their own ports and data directory, so both can run
# at once.
#
# Usage: scripts/cluster.sh COMMAND [NAME]
#   up              start everything not yet running, wait until it is ready, print the URL
#   down            stop everything this data directory's cluster runs (SIGTERM, then SIGKILL)
#   run             up, then stay in the foreground; Ctrl-C (SIGINT/SIGTERM) runs down
#   services        start only Kafka and the store (PostgreSQL, FerretDB) and wait for them
#                   (no build needed)
#   start NAME      start one process and wait until it is ready
#   stop NAME       stop one process (SIGTERM, then SIGKILL; postgres: SIGINT, its fast
#                   shutdown)
#   kill NAME       SIGKILL one process (crash tests)
#   restart NAME    stop, then start one process
#   reload haproxy  a new HAProxy process takes the listeners (-sf); the old one stops
#                   listening and finishes its established connections (WebSocket tunnels
#                   stay up), then exits; `down` stops such leftovers too
#   status          one line per process; exit 0 when all run, 3 otherwise
#   env             print the cluster's settings (the content of cluster.env)
# NAME: kafka (kafka-1 .. kafka-N when CHAT_KAFKA_NODES > 1), postgres, ferretdb,
#       gateway-1 .. gateway-N, persister, haproxy.
#
# Settings (environment; a relative directory is taken from the repo):
#   CHAT_PUBLIC_PORT=8080         HAProxy, what browsers use
#   CHAT_GATEWAY_PORTS=8081,8082  one gateway per port (gateway-1 on the first, ...)
#   CHAT_TLS_PORT=8443            HAProxy's https and wss listener, with the certificate under
#                                 tls/ (made on first start, below)
#   CHAT_STATS_PORT=8404          HAProxy stats page (/ and /metrics)
#   CHAT_CONN_RATE_LIMIT=1000     new connections one client address may open through HAProxy
#                                 per 10 s (its stick table); more are refused at connect
#   CHAT_PERSISTER_METRICS_PORT=9464  the persister's GET /metrics (CHAT_METRICS_LISTEN);
#                                 each gateway serves its own /metrics on its port
#   CHAT_KAFKA_PORT=9092          Kafka broker; its KRaft controller listens on the next port
#   CHAT_KAFKA_NODES=1            Kafka nodes: 1, or 3 (any count up to 9) combined
#                                 broker+controller nodes kafka-1 .. kafka-N forming one KRaft
#                                 quorum; node i listens on CHAT_KAFKA_PORT + 2(i-1) and its
#                                 controller on the port after that (9092/9093, 9094/9095,
#                                 9096/9097). Then every internal topic and the chat topic (made
#                                 by chat-admin init, unless CHAT_REPLICATION says otherwise) have
#                                 min(3, N) replicas with min.insync.replicas 2, and each node's
#                                 heap is at most 384 MiB (512 MiB for a single node)
#   CHAT_MONGO_PORT=27017         FerretDB
#   CHAT_PG_PORT=5433             PostgreSQL, FerretDB's backend (127.0.0.1 only, trust auth:
#                                 no more open than FerretDB itself; 5433, as Debian's own
#                                 PostgreSQL service, if any, has 5432)
#   CHAT_STORE_BACKEND=pg         FerretDB's backend: pg (PostgreSQL 15 from Debian) or sqlite
#                                 (files, no server; it filters only _id in the database, so a
#                                 room's history read scans the whole collection)
#   CHAT_PG_BIN=/usr/lib/postgresql/15/bin   initdb, postgres, pg_isready, psql
#   CHAT_STORE_NICE=10            nice value of the store path (persister, FerretDB, PostgreSQL):
#                                 on one machine they share the cores with the gateways and
#                                 Kafka, and their bursts of work (a batch every CHAT_BATCH_MS)
#                                 would delay deliveries; in production they have their own
#                                 machines. They only need throughput. 0: the same as the rest
#   CHAT_DATA_DIR=<repo>/.data    everything the cluster writes (below)
#   CHAT_BUILD_DIR=<repo>/build   where gateway/chat-gateway, persister/chat-persister and
#                                 tools/chat-admin are
#   CHAT_CACHE_DIR=~/.cache/chat-gateway   what scripts/deps.sh installed (Kafka, FerretDB)
#   CHAT_JWT_SECRET               HS256 secret for the gateways; unset (and no
#                                 CHAT_JWT_PUBLIC_KEY): dev-secret-change-me, with a warning
#   CHAT_WEB_ROOT, CHAT_DEV_TOKENS  for the gateways; default <repo>/gateway/web and 1
#   CHAT_UP_TIMEOUT=120           seconds to wait for each process to become ready
#   CHAT_STOP_TIMEOUT=10          seconds between SIGTERM and SIGKILL (Kafka gets 3x)
#   CHAT_KEEP_ON_FAIL=0           1: when up fails, leave what it started running (to debug)
#   CHAT_JAVA                     the java to run Kafka with (default: Java 17)
# Every other CHAT_* variable passes through to the gateways, the persister and chat-admin
# (tests tune rate limits that way); the script sets CHAT_LISTEN and CHAT_NODE_ID (gw-N) per
# gateway, and CHAT_KAFKA_BROKERS and CHAT_MONGO_URI to this cluster's.
#
# Files, under CHAT_DATA_DIR:
#   cluster.env             KEY=value lines: the ports, CHAT_DATA_DIR, CHAT_BUILD_DIR,
#                           CHAT_PUBLIC_URL, CHAT_WS_URL, CHAT_HTTPS_URL, CHAT_WSS_URL,
#                           CHAT_TLS_CA, CHAT_KAFKA_BROKERS, CHAT_MONGO_URI
#   tls/                    ca.crt (the local certificate authority: the file to trust) and
#                           ca.key, server.crt and server.key (for 127.0.0.1, ::1 and localhost,
#                           signed by that CA), server.pem (both, for HAProxy). Made with the
#                           openssl command on first start; the server certificate again when
#                           it expires within 30 days, both when the CA expires within a day.
#   logs/<name>.log         each process's stdout and stderr, appended across restarts
#                           (also logs/chat-admin.log)
#   run/<name>.pid          the pid (one line); run/<name>.start its start time, so a recycled
#                           pid is never taken for ours
#   run/passthrough.env     the CHAT_* settings `up` saw, mode 600, reused by `start NAME`
#   run/haproxy.cfg         generated only when there are not exactly two gateways
#   run/haproxy-old.pids    HAProxy processes a reload left finishing their connections
#   kafka/                  server.properties, cluster.id, data/ (formatted on first use)
#   kafka-1/ .. kafka-N/    the same per node when CHAT_KAFKA_NODES > 1 (server.properties,
#                           data/), with the cluster id they share in kafka-cluster.id
#   postgres/               the PostgreSQL data directory (initdb on first use; superuser
#                           chat, database chat holds FerretDB's collections), owned by the
#                           postgres system user when this runs as root: PostgreSQL refuses to
#                           run as root, so the server runs as that user (setpriv), and
#                           CHAT_DATA_DIR gets o+x (search, not read) when that user could not
#                           reach postgres/ otherwise. Where it still cannot (a parent such as
#                           /root is private), postgres/ is a symlink to
#                           ~postgres/chat-gateway/<hash of CHAT_DATA_DIR>/ (make clean-data
#                           deletes that too). An event trigger gives FerretDB's messages
#                           tables a GIN index on room (PG_ROOM_INDEX_SQL says why).
#   ferretdb/               its state, and sqlite/ (the databases of the sqlite backend)
# Commands other than up/run/services take the settings from cluster.env and
# run/passthrough.env for what the environment does not set; up/run/services do the same when
# a process of this data directory is still running, and otherwise start from the environment.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CHAT_CACHE_DIR:-$HOME/.cache/chat-gateway}
DEV_JWT_SECRET=dev-secret-change-me
# libmongoc (as Debian builds it, initialised when it is loaded, before main) keeps its counters
# in a /dev/shm/mongoc-<pid> file, for mongoc-stat, which nothing here reads. A killed process
# leaves the file behind, and a later process that gets the same pid then writes a warning to
# stderr before any log set-up (a line that is not JSON under CHAT_LOG_FORMAT=json): counters in
# memory instead. deploy/Dockerfile sets the same.
export MONGOC_DISABLE_SHM=1
STARTED=() # what this invocation started, for the cleanup after a failed up

# Variables that configure this script, not the processes: not saved for restarts.
OWN_VARS=(CHAT_PUBLIC_PORT CHAT_GATEWAY_PORTS CHAT_STATS_PORT CHAT_KAFKA_PORT CHAT_MONGO_PORT
	CHAT_PERSISTER_METRICS_PORT CHAT_METRICS_LISTEN
	CHAT_PG_PORT CHAT_STORE_BACKEND CHAT_PG_BIN CHAT_DATA_DIR CHAT_BUILD_DIR CHAT_CACHE_DIR
	CHAT_UP_TIMEOUT CHAT_STOP_TIMEOUT CHAT_KEEP_ON_FAIL CHAT_JAVA CHAT_PYTHON CHAT_DEPS_EXTRA_DEBS
	CHAT_PUBLIC_BIND CHAT_STATS_BIND CHAT_GW1_ADDR CHAT_GW2_ADDR CHAT_KAFKA_CONTROLLER_PORT
	CHAT_PUBLIC_URL CHAT_WS_URL CHAT_TLS_PORT CHAT_TLS_BIND CHAT_TLS_CRT CHAT_CONN_RATE_LIMIT
	CHAT_HTTPS_URL CHAT_WSS_URL CHAT_TLS_CA CHAT_KAFKA_NODES CHAT_STORE_NICE)

say() { echo "==> $*"; }
warn() { echo "cluster.sh: WARNING: $*" >&2; }
die() {
	echo "cluster.sh: error: $*" >&2
	exit 1
}

abspath() { # abspath PATH BASE: PATH made absolute against BASE
	case "$1" in
	/*) echo "$1" ;;
	*) echo "$2/$1" ;;
	esac
}

# ---------------------------------------------------------------- settings

DATA=$(abspath "${CHAT_DATA_DIR:-.data}" "$REPO")
LOGS=$DATA/logs
RUN=$DATA/run
ENV_FILE=$DATA/cluster.env
TLS_DIR=$DATA/tls
PASS_FILE=$RUN/passthrough.env

# Later commands (start NAME, down, status) use the settings `up` recorded, unless the
# environment says otherwise.
load_saved_settings() {
	local line key
	[ -f "$ENV_FILE" ] || return 0
	while IFS= read -r line; do
		[[ $line =~ ^(CHAT_[A-Z0-9_]+)=(.*)$ ]] || continue
		key=${BASH_REMATCH[1]}
		[ -n "${!key+x}" ] || export "$key=${BASH_REMATCH[2]}"
	done <"$ENV_FILE"
	if [ -f "$PASS_FILE" ]; then
		while IFS= read -r line; do
			[[ $line =~ ^(CHAT_[A-Z0-9_]+)= ]] || continue
			key=${BASH_REMATCH[1]}
			# shellcheck disable=SC1090
			[ -n "${!key+x}" ] || eval "export $line"
		done <"$PASS_FILE"
	fi
}

resolve_settings() {
	PUBLIC_PORT=${CHAT_PUBLIC_PORT:-8080}
	STATS_PORT=${CHAT_STATS_PORT:-8404}
	TLS_PORT=${CHAT_TLS_PORT:-8443}
	CONN_RATE_LIMIT=${CHAT_CONN_RATE_LIMIT:-1000}
	[[ $CONN_RATE_LIMIT =~ ^[1-9][0-9]{0,8}$ ]] ||
		die "bad CHAT_CONN_RATE_LIMIT '$CONN_RATE_LIMIT' (new connections per address per 10 s, 1 or more)"
	PERSISTER_METRICS_PORT=${CHAT_PERSISTER_METRICS_PORT:-9464}
	KAFKA_PORT=${CHAT_KAFKA_PORT:-9092}
	CONTROLLER_PORT=$((KAFKA_PORT + 1))
	KAFKA_NODES=${CHAT_KAFKA_NODES:-1}
	[[ $KAFKA_NODES =~ ^[1-9]$ ]] || die "bad CHAT_KAFKA_NODES '$KAFKA_NODES' (1 to 9; 3 for a replicated cluster)"
	[ $((KAFKA_PORT + 2 * KAFKA_NODES - 1)) -le 65535 ] || die "CHAT_KAFKA_PORT $KAFKA_PORT leaves no room for $KAFKA_NODES nodes"
	MONGO_PORT=${CHAT_MONGO_PORT:-27017}
	PG_PORT=${CHAT_PG_PORT:-5433}
	IFS=', ' read -r -a GW_PORTS <<<"${CHAT_GATEWAY_PORTS:-8081,8082}"
	local p
	for p in "$PUBLIC_PORT" "$TLS_PORT" "$STATS_PORT" "$KAFKA_PORT" "$MONGO_PORT" "$PG_PORT" \
		"$PERSISTER_METRICS_PORT" "${GW_PORTS[@]}"; do
		[[ $p =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65534 ] || die "bad port '$p'"
	done
	STORE_BACKEND=${CHAT_STORE_BACKEND:-pg}
	case "$STORE_BACKEND" in
	pg | sqlite) ;;
	*) die "bad CHAT_STORE_BACKEND '$STORE_BACKEND' (pg or sqlite)" ;;
	esac
	STORE_NICE=${CHAT_STORE_NICE:-10}
	[[ $STORE_NICE =~ ^[0-9]+$ ]] && [ "$STORE_NICE" -le 19 ] ||
		die "bad CHAT_STORE_NICE '$STORE_NICE' (0 to 19)"
	PG_BIN=${CHAT_PG_BIN:-/usr/lib/postgresql/15/bin}
	PG_URL=postgres://chat@127.0.0.1:$PG_PORT/chat
	[ ${#GW_PORTS[@]} -ge 1 ] || die "CHAT_GATEWAY_PORTS lists no port"
	# A relative build dir is taken from the repo (CHAT_BUILD_DIR=build-asan).
	BUILD=$(abspath "${CHAT_BUILD_DIR:-build}" "$REPO")
	UP_TIMEOUT=${CHAT_UP_TIMEOUT:-120}
	STOP_TIMEOUT=${CHAT_STOP_TIMEOUT:-10}
	local i
	KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
	for ((i = 2; i <= KAFKA_NODES; i++)); do KAFKA_BROKERS+=",127.0.0.1:$(kafka_port_of "$i")"; done
	MONGO_URI=mongodb://127.0.0.1:$MONGO_PORT/chat
	GATEWAY_BIN=$BUILD/gateway/chat-gateway
	PERSISTER_BIN=$BUILD/persister/chat-persister
	ADMIN_BIN=$BUILD/tools/chat-admin
	FERRETDB_BIN=$CACHE/ferretdb/ferretdb
	# The environment of a gateway, the persister and chat-admin: the caller's (every CHAT_*
	# setting passes through; the programs read only the ones they know) plus the addresses of
	# this cluster.
	CHAT_ENV=(env "CHAT_KAFKA_BROKERS=$KAFKA_BROKERS" "CHAT_MONGO_URI=$MONGO_URI")
	KAFKA_LIBS=$CACHE/kafka/libs
	if [ -n "${CHAT_JAVA:-}" ]; then
		JAVA=$CHAT_JAVA
	elif [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
		JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java # Kafka 3.9 supports up to Java 23
	else
		JAVA=java
	fi
}

write_settings() {
	mkdir -p "$DATA" "$LOGS" "$RUN"
	cat >"$ENV_FILE.tmp" <<-EOF
		# Written by scripts/cluster.sh up: this cluster's settings, KEY=value, one per line.
		CHAT_PUBLIC_PORT=$PUBLIC_PORT
		CHAT_GATEWAY_PORTS=$(
			IFS=,
			echo "${GW_PORTS[*]}"
		)
		CHAT_TLS_PORT=$TLS_PORT
		CHAT_STATS_PORT=$STATS_PORT
		CHAT_CONN_RATE_LIMIT=$CONN_RATE_LIMIT
		CHAT_PERSISTER_METRICS_PORT=$PERSISTER_METRICS_PORT
		CHAT_KAFKA_PORT=$KAFKA_PORT
		CHAT_KAFKA_CONTROLLER_PORT=$CONTROLLER_PORT
		CHAT_KAFKA_NODES=$KAFKA_NODES
		CHAT_MONGO_PORT=$MONGO_PORT
		CHAT_STORE_BACKEND=$STORE_BACKEND
		CHAT_PG_PORT=$PG_PORT
		CHAT_DATA_DIR=$DATA
		CHAT_BUILD_DIR=$BUILD
		CHAT_PUBLIC_URL=http://127.0.0.1:$PUBLIC_PORT/
		CHAT_WS_URL=ws://127.0.0.1:$PUBLIC_PORT/ws
		CHAT_HTTPS_URL=https://127.0.0.1:$TLS_PORT/
		CHAT_WSS_URL=wss://127.0.0.1:$TLS_PORT/ws
		CHAT_TLS_CA=$TLS_DIR/ca.crt
		CHAT_KAFKA_BROKERS=$KAFKA_BROKERS
		CHAT_MONGO_URI=$MONGO_URI
	EOF
	mv "$ENV_FILE.tmp" "$ENV_FILE"
	# The CHAT_* settings for the processes, to restart one later with the same ones.
	local v own
	: >"$PASS_FILE.tmp"
	chmod 600 "$PASS_FILE.tmp"
	while IFS= read -r v; do
		for own in "${OWN_VARS[@]}" CHAT_KAFKA_BROKERS CHAT_MONGO_URI CHAT_LISTEN CHAT_NODE_ID; do
			[ "$v" != "$own" ] || continue 2
		done
		printf '%s=%q\n' "$v" "${!v}" >>"$PASS_FILE.tmp"
	done < <(compgen -e | grep '^CHAT_' || true)
	mv "$PASS_FILE.tmp" "$PASS_FILE"
}

jwt_secret_default() {
	if [ -z "${CHAT_JWT_SECRET:-}" ] && [ -z "${CHAT_JWT_PUBLIC_KEY:-}" ]; then
		warn "CHAT_JWT_SECRET is not set: the gateways use the development secret" \
			"'$DEV_JWT_SECRET'. Never use it in production."
		export CHAT_JWT_SECRET=$DEV_JWT_SECRET
	fi
}

# ---------------------------------------------------------------- processes

# The process names of this cluster, in start order.
all_names() {
	local i
	kafka_names
	[ "$STORE_BACKEND" != pg ] || echo postgres
	echo ferretdb
	for i in "${!GW_PORTS[@]}"; do echo "gateway-$((i + 1))"; done
	echo persister haproxy
}

# Names with a pid file, in stop order (front to back), whatever the current settings.
running_names_stop_order() {
	local f n names=()
	for f in "$RUN"/*.pid; do
		[ -e "$f" ] || continue
		n=$(basename "$f" .pid)
		names+=("$n")
	done
	for n in haproxy; do printf '%s\n' "${names[@]}" | grep -x "$n" || true; done
	printf '%s\n' "${names[@]}" | grep '^gateway-' | sort -V || true
	for n in persister; do printf '%s\n' "${names[@]}" | grep -x "$n" || true; done
	printf '%s\n' "${names[@]}" | grep -xE 'kafka(-[0-9]+)?' | sort -V || true
	for n in ferretdb postgres; do printf '%s\n' "${names[@]}" | grep -x "$n" || true; done
	printf '%s\n' "${names[@]}" | grep -vxE 'haproxy|gateway-[0-9]+|persister|kafka(-[0-9]+)?|ferretdb|postgres' || true
}

start_time_of() { # the kernel's start time of PID, to tell it from a later process with the same pid
	local stat rest
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	rest=${stat##*) }
	# shellcheck disable=SC2086
	set -- $rest
	[ "$1" != Z ] || return 1 # exited, not yet reaped
	echo "${20}"
}

state_of() { # R, S, Z, ... of PID; nothing when there is no such process
	local stat rest
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	rest=${stat##*) }
	echo "${rest%% *}"
}

ppid_of() {
	local stat rest
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	rest=${stat##*) }
	# shellcheck disable=SC2086
	set -- $rest
	echo "$2"
}

# pid_of NAME: prints the pid when NAME runs: run/NAME.pid holds a live pid whose start time
# is the one recorded in run/NAME.start (so a recycled pid is not taken for ours).
pid_of() {
	local f="$RUN/$1.pid" pid st="" now
	[ -f "$f" ] || return 1
	read -r pid <"$f" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	now=$(start_time_of "$pid") || return 1
	[ -f "$RUN/$1.start" ] && read -r st <"$RUN/$1.start"
	[ -z "$st" ] || [ "$now" = "$st" ] || return 1
	echo "$pid"
}

is_running() { pid_of "$1" >/dev/null; }

any_running() {
	local f
	for f in "$RUN"/*.pid; do
		[ -e "$f" ] || continue
		is_running "$(basename "$f" .pid)" && return 0
	done
	return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_port_free() { # check_port_free PORT WHAT
	if port_busy "$1"; then
		die "port $1 ($2) is already in use on 127.0.0.1: another cluster? Stop it" \
			"(scripts/cluster.sh down, with its CHAT_DATA_DIR) or choose other ports (CHAT_*_PORT)."
	fi
}

# launch NAME CMD...: runs CMD in its own session (so terminal signals and the caller's exit do
# not reach it), output appended to logs/NAME.log, and records its pid.
launch() {
	local name=$1 log="$LOGS/$1.log" pid st
	shift
	mkdir -p "$LOGS" "$RUN"
	echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) cluster.sh starting $name: $*" >>"$log"
	# In a script (no job control) the background child is not a group leader, so setsid
	# execs in place and $! is the process itself.
	(cd "$DATA" && exec setsid "$@") >>"$log" 2>&1 </dev/null &
	pid=$!
	disown "$pid" 2>/dev/null || true # no "Killed" notice from this shell in `run`
	st=$(start_time_of "$pid" || true)
	echo "$st" >"$RUN/$name.start"
	echo "$pid" >"$RUN/$name.pid"
	STARTED+=("$name")
}

log_tail() {
	echo "---- last lines of $LOGS/$1.log:" >&2
	tail -n "${2:-25}" "$LOGS/$1.log" >&2 2>/dev/null || true
	echo "----" >&2
}

# wait_ready NAME CHECK...: polls CHECK until it succeeds, the process dies, or the timeout.
wait_ready() {
	local name=$1 deadline=$((SECONDS + UP_TIMEOUT))
	shift
	while ! "$@"; do
		if ! is_running "$name"; then
			log_tail "$name"
			die "$name exited while starting; see $LOGS/$name.log"
		fi
		if [ $SECONDS -ge $deadline ]; then
			log_tail "$name"
			die "$name was not ready after ${UP_TIMEOUT}s; see $LOGS/$name.log"
		fi
		sleep 0.25
	done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# ---- Kafka

# One node (CHAT_KAFKA_NODES=1) is called kafka and keeps its files in kafka/; with more, node
# i is kafka-i with its files in kafka-i/. Node i listens for clients on CHAT_KAFKA_PORT +
# 2(i-1) and for its KRaft controller on the port after that.
kafka_names() {
	local i
	if [ "$KAFKA_NODES" = 1 ]; then
		echo kafka
	else
		for ((i = 1; i <= KAFKA_NODES; i++)); do echo "kafka-$i"; done
	fi
}
kafka_port_of() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
kafka_node_of() { # kafka_node_of NAME: the node number of kafka or kafka-N, or an error
	local name=$1 n
	if [ "$KAFKA_NODES" = 1 ]; then
		[ "$name" = kafka ] || die "no $name: CHAT_KAFKA_NODES=1 runs one node, called kafka"
		echo 1
		return
	fi
	n=${name#kafka-}
	[[ $name =~ ^kafka-[1-9]$ ]] && [ "$n" -le "$KAFKA_NODES" ] ||
		die "no $name: CHAT_KAFKA_NODES=$KAFKA_NODES runs kafka-1 .. kafka-$KAFKA_NODES"
	echo "$n"
}
kafka_dir_of() { # kafka_dir_of NODE
	if [ "$KAFKA_NODES" = 1 ]; then echo "$DATA/kafka"; else echo "$DATA/kafka-$1"; fi
}

kafka_started_since() { # kafka_started_since NAME PORT OFFSET: NAME logged that it is up after
	port_busy "$2" && # the log offset OFFSET
		tail -c +"$(($3 + 1))" "$LOGS/$1.log" 2>/dev/null | grep -q 'Kafka Server started'
}

declare -A KAFKA_LOG_OFFSET=()

# start_kafka NAME: writes the node's server.properties from deploy/kafka/server.properties.in,
# formats its storage on first use, launches it.
start_kafka() {
	local name=$1 node port ctl i voters="" replicas min_isr
	node=$(kafka_node_of "$name")
	compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null ||
		die "no Kafka jars in $KAFKA_LIBS: run scripts/deps.sh"
	command -v "$JAVA" >/dev/null 2>&1 || die "java not found: run scripts/deps.sh"
	port=$(kafka_port_of "$node")
	ctl=$((port + 1))
	check_port_free "$port" "$name"
	check_port_free "$ctl" "$name controller"
	for ((i = 1; i <= KAFKA_NODES; i++)); do
		voters+="${voters:+,}$i@127.0.0.1:$(($(kafka_port_of "$i") + 1))"
	done
	# Internal topics get every node up to 3; two replicas must take a write when there are 3.
	replicas=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
	min_isr=$((replicas < 3 ? 1 : 2))
	local kdir props idfile cp="$KAFKA_LIBS/*" offset heap=(-Xms256m -Xmx512m)
	kdir=$(kafka_dir_of "$node")
	props=$kdir/server.properties
	idfile=$kdir/cluster.id
	[ "$KAFKA_NODES" = 1 ] || { # 2 cores for three JVMs and the rest: keep each small
		idfile=$DATA/kafka-cluster.id
		heap=(-Xms128m -Xmx384m)
	}
	local log4j="-Dlog4j.configuration=file:$REPO/deploy/kafka/log4j.properties"
	local jvm=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
		-Djava.awt.headless=true "$log4j")
	local tool=("$JAVA" -Xmx256m -Djava.awt.headless=true "$log4j" -cp "$cp" kafka.tools.StorageTool)
	mkdir -p "$kdir/data" "$LOGS"
	sed -e "s|@KAFKA_PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$ctl|g" \
		-e "s|@NODE_ID@|$node|g" -e "s|@VOTERS@|$voters|g" \
		-e "s|@REPLICAS@|$replicas|g" -e "s|@MIN_ISR@|$min_isr|g" \
		-e "s|@DATA@|$kdir/data|g" "$REPO/deploy/kafka/server.properties.in" >"$props"
	if [ ! -f "$kdir/data/meta.properties" ]; then
		say "formatting Kafka storage in $kdir/data"
		local id
		[ -s "$idfile" ] ||
			"${tool[@]}" random-uuid >"$idfile" \
				2>>"$LOGS/$name.log" || die "kafka.tools.StorageTool random-uuid failed; see $LOGS/$name.log"
		id=$(tr -d '[:space:]' <"$idfile")
		"${tool[@]}" format --ignore-formatted \
			-t "$id" -c "$props" >>"$LOGS/$name.log" 2>&1 ||
			die "formatting Kafka storage failed; see $LOGS/$name.log"
	fi
	offset=$(stat -c %s "$LOGS/$name.log" 2>/dev/null || echo 0)
	say "starting $name on 127.0.0.1:$port (controller :$ctl)"
	launch "$name" "$JAVA" "${jvm[@]}" -cp "$cp" kafka.Kafka "$props"
	KAFKA_LOG_OFFSET[$name]=$offset
}
wait_kafka() { # wait_kafka NAME
	local node
	node=$(kafka_node_of "$1")
	wait_ready "$1" kafka_started_since "$1" "$(kafka_port_of "$node")" "${KAFKA_LOG_OFFSET[$1]:-0}"
}

# ---- PostgreSQL (FerretDB's backend when CHAT_STORE_BACKEND=pg)

PG_OS_USER=postgres # created by Debian's postgresql-common

# The prefix that runs a PostgreSQL server program: initdb and postgres refuse to run as root,
# so as root they run as the postgres system user (setpriv execs in place, so the pid launch
# records is the postmaster's).
pg_as_owner() {
	PG_AS=()
	[ "$(id -u)" -ne 0 ] ||
		PG_AS=(setpriv "--reuid=$PG_OS_USER" "--regid=$PG_OS_USER" --init-groups --)
}

pg_reachable() { "${PG_AS[@]}" test -x "$1" 2>/dev/null; } # the server's user can enter DIR

# Sets PG_DATA, the data directory, and makes sure the server's user can reach it (header).
pg_data_dir() {
	local link=$DATA/postgres home dir
	PG_DATA=$link
	[ ${#PG_AS[@]} -gt 0 ] || return 0
	if [ -L "$link" ]; then # placed elsewhere on an earlier start
		PG_DATA=$(readlink -f "$link")
		return 0
	fi
	mkdir -p "$DATA"
	if ! pg_reachable "$DATA" && pg_reachable "$(dirname "$DATA")"; then
		chmod o+x "$DATA" # search only: the postgres user can enter postgres/, list nothing
	fi
	pg_reachable "$DATA" && return 0
	home=$(getent passwd "$PG_OS_USER" | cut -d: -f6)
	[ -n "$home" ] && pg_reachable "$home" ||
		die "the $PG_OS_USER user cannot reach $DATA, nor its home '$home': choose a CHAT_DATA_DIR it can reach"
	dir=$home/chat-gateway/$(printf '%s' "$DATA" | sha256sum | cut -c1-16)
	say "the $PG_OS_USER user cannot reach $DATA (a parent directory is private):" \
		"PostgreSQL's data goes to $dir (linked from $link)"
	mkdir -p "$dir"
	chmod 755 "$home/chat-gateway"
	ln -sfn "$dir" "$link"
	PG_DATA=$dir
}

start_postgres() {
	[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] ||
		die "no PostgreSQL 15 server in $PG_BIN: run scripts/deps.sh (Debian package postgresql-15)"
	pg_as_owner
	if [ ${#PG_AS[@]} -gt 0 ]; then
		id -u "$PG_OS_USER" >/dev/null 2>&1 ||
			die "no '$PG_OS_USER' user to run PostgreSQL as (root may not): run scripts/deps.sh (postgresql-15 creates it)"
		command -v setpriv >/dev/null 2>&1 || die "setpriv not found: run scripts/deps.sh (util-linux)"
	fi
	check_port_free "$PG_PORT" "PostgreSQL"
	mkdir -p "$LOGS"
	pg_data_dir
	if [ ! -s "$PG_DATA/PG_VERSION" ]; then
		say "initialising PostgreSQL in $PG_DATA"
		mkdir -p "$PG_DATA"
		[ ${#PG_AS[@]} -eq 0 ] || chown "$PG_OS_USER:" "$PG_DATA"
		chmod 700 "$PG_DATA"
		# Superuser chat, no password (127.0.0.1 only); C collation: strings (message ids) sort
		# bytewise, as in MongoDB.
		echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) cluster.sh: initdb $PG_DATA" >>"$LOGS/postgres.log"
		"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U chat --auth=trust -E UTF8 --locale=C \
			>>"$LOGS/postgres.log" 2>&1 </dev/null ||
			die "initdb failed; see $LOGS/postgres.log (an unfinished $PG_DATA may need removing)"
	fi
	# A postmaster killed a moment ago may still be a zombie, until init reaps it, and
	# PostgreSQL takes the pid in postmaster.pid for a live server: give it a few seconds.
	local old deadline=$((SECONDS + 10))
	if read -r old 2>/dev/null <"$PG_DATA/postmaster.pid" && [[ $old =~ ^[0-9]+$ ]]; then
		while [ "$(state_of "$old")" = Z ] && [ $SECONDS -lt $deadline ]; do sleep 0.25; done
	fi
	say "starting postgres on 127.0.0.1:$PG_PORT (data in $PG_DATA)"
	# TCP on 127.0.0.1 only, no Unix socket (its directory would be shared with other servers).
	# A failed statement is not logged: the routine one is a replayed message's duplicate key,
	# and the statement would copy the message into the log.
	launch postgres nice -n "$STORE_NICE" "${PG_AS[@]}" "$PG_BIN/postgres" -D "$PG_DATA" \
		-c listen_addresses=127.0.0.1 -c port="$PG_PORT" -c unix_socket_directories= \
		-c lc_messages=C -c log_min_error_statement=panic
}

pg_psql() { PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U chat "$@"; }
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U chat -d postgres -t 2; }

wait_postgres() {
	wait_ready postgres pg_ready
	# FerretDB keeps its collections in the database chat (a schema per MongoDB database).
	local have
	have=$(pg_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'chat'" 2>&1) ||
		die "PostgreSQL on 127.0.0.1:$PG_PORT answers pg_isready but not psql: $have"
	if [ "$have" != 1 ]; then
		pg_psql -d postgres -c 'CREATE DATABASE chat' >>"$LOGS/postgres.log" 2>&1 ||
			die "creating the database chat failed; see $LOGS/postgres.log"
	fi
	pg_psql -d chat -v ON_ERROR_STOP=1 -f - >>"$LOGS/postgres.log" 2>&1 <<<"$PG_ROOM_INDEX_SQL" ||
		die "installing the room index trigger failed; see $LOGS/postgres.log"
}

# FerretDB 1.24 turns {room: R} into `_jsonb->'room' @> '"R"'`, which the btree index of
# {room: 1, _id: -1} cannot serve (and it sorts and limits in memory), so every history read
# scanned the whole collection. A GIN index on room can serve it: the read then costs the
# room's messages, not the store's. This event trigger gives every FerretDB table of a
# collection named messages (any database) such an index when FerretDB creates the table.
PG_ROOM_INDEX_SQL=$(
	cat <<'EOF'
CREATE OR REPLACE FUNCTION public.chat_room_index() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE o record;
BEGIN
	FOR o IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
		IF o.object_identity ~ '\.messages_[0-9a-f]{8}$' THEN
			EXECUTE format('CREATE INDEX %I ON %s USING gin ((_jsonb -> %L) jsonb_path_ops)',
				(SELECT relname FROM pg_class WHERE oid = o.objid) || '_room_gin',
				o.object_identity, 'room');
		END IF;
	END LOOP;
END $$;
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'chat_room_index') THEN
		CREATE EVENT TRIGGER chat_room_index ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
			EXECUTE FUNCTION public.chat_room_index();
	END IF;
END $$;
EOF
)

# ---- FerretDB

start_ferretdb() {
	[ -x "$FERRETDB_BIN" ] || die "no FerretDB at $FERRETDB_BIN: run scripts/deps.sh"
	check_port_free "$MONGO_PORT" "FerretDB"
	local backend
	if [ "$STORE_BACKEND" = pg ]; then
		is_running postgres || die "postgres is not running: scripts/cluster.sh start postgres"
		backend=(--handler=postgresql "--postgresql-url=$PG_URL")
	else
		mkdir -p "$DATA/ferretdb/sqlite"
		backend=(--handler=sqlite "--sqlite-url=file:$DATA/ferretdb/sqlite/")
	fi
	mkdir -p "$DATA/ferretdb"
	say "starting ferretdb on 127.0.0.1:$MONGO_PORT ($STORE_BACKEND backend)"
	# The debug HTTP listener is off (it would take 127.0.0.1:8088 in every cluster); telemetry off.
	launch ferretdb nice -n "$STORE_NICE" env DO_NOT_TRACK=1 "$FERRETDB_BIN" "${backend[@]}" --state-dir="$DATA/ferretdb" \
		--listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr=- --telemetry=disable
}
wait_ferretdb() { wait_ready ferretdb port_busy "$MONGO_PORT"; }

# ---- gateways, persister, chat-admin

check_built() {
	local b missing=()
	for b in "$GATEWAY_BIN" "$PERSISTER_BIN" "$ADMIN_BIN"; do
		[ -x "$b" ] || missing+=("$b")
	done
	[ ${#missing[@]} -eq 0 ] || die "build first: make build (missing: ${missing[*]})"
}

gateway_port() { # gateway_port N
	local n=$1
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le ${#GW_PORTS[@]} ] ||
		die "no gateway-$n: CHAT_GATEWAY_PORTS has ${#GW_PORTS[@]} port(s)"
	echo "${GW_PORTS[$((n - 1))]}"
}

start_gateway() { # start_gateway N
	local n=$1 port
	port=$(gateway_port "$n")
	[ -x "$GATEWAY_BIN" ] || die "build first: make build (missing $GATEWAY_BIN)"
	check_port_free "$port" "gateway-$n"
	say "starting gateway-$n on 127.0.0.1:$port"
	launch "gateway-$n" "${CHAT_ENV[@]}" \
		"CHAT_LISTEN=127.0.0.1:$port" "CHAT_NODE_ID=gw-$n" \
		"CHAT_WEB_ROOT=${CHAT_WEB_ROOT:-$REPO/gateway/web}" \
		"CHAT_DEV_TOKENS=${CHAT_DEV_TOKENS:-1}" \
		"$GATEWAY_BIN"
}
wait_gateway() {
	local port
	port=$(gateway_port "$1")
	wait_ready "gateway-$1" http_ok "http://127.0.0.1:$port/readyz"
}

start_persister() {
	[ -x "$PERSISTER_BIN" ] || die "build first: make build (missing $PERSISTER_BIN)"
	check_port_free "$PERSISTER_METRICS_PORT" "persister metrics"
	say "starting persister (metrics on :$PERSISTER_METRICS_PORT)"
	launch persister nice -n "$STORE_NICE" "${CHAT_ENV[@]}" "CHAT_METRICS_LISTEN=127.0.0.1:$PERSISTER_METRICS_PORT" \
		"$PERSISTER_BIN"
}
# ready once its metrics listener answers (it starts before the persister reaches Kafka)
wait_persister() {
	wait_ready persister http_ok "http://127.0.0.1:$PERSISTER_METRICS_PORT/metrics"
}

admin_init() {
	local try log=$LOGS/chat-admin.log
	say "chat-admin init (topics and indexes)"
	# chat-admin waits for Kafka and MongoDB itself; retry only in case of a hiccup.
	for try in 1 2 3; do
		echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) cluster.sh: chat-admin init (try $try)" >>"$log"
		# The topic gets a replica on every Kafka node, up to 3 (chat-admin then sets its
		# min.insync.replicas to 2), unless CHAT_REPLICATION says otherwise.
		if "${CHAT_ENV[@]}" "CHAT_REPLICATION=${CHAT_REPLICATION:-$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))}" \
			"$ADMIN_BIN" init >>"$log" 2>&1 </dev/null; then
			return 0
		fi
		sleep 2
	done
	tail -n 25 "$log" >&2
	die "chat-admin init failed 3 times; see $log"
}

# ---- HAProxy

haproxy_cfg() { # the config to use: the shared one for two gateways, a generated one otherwise
	local cfg=$REPO/deploy/haproxy/haproxy.cfg
	if [ ${#GW_PORTS[@]} -eq 2 ]; then
		echo "$cfg"
		return
	fi
	local gen=$RUN/haproxy.cfg i lines=""
	for i in "${!GW_PORTS[@]}"; do
		lines+="    server gw$((i + 1)) 127.0.0.1:${GW_PORTS[$i]}\n"
	done
	awk -v lines="$lines" '
		/^[[:space:]]*server gw1 / { printf "%s", lines; next }
		/^[[:space:]]*server gw2 / { next }
		{ print }' "$cfg" | sed 's/\\n/\n/g' >"$gen"
	echo "$gen"
}

haproxy_env() {
	printf '%s\0' env "CHAT_PUBLIC_BIND=127.0.0.1:$PUBLIC_PORT" "CHAT_STATS_BIND=127.0.0.1:$STATS_PORT" \
		"CHAT_GW1_ADDR=127.0.0.1:${GW_PORTS[0]}" "CHAT_GW2_ADDR=127.0.0.1:${GW_PORTS[1]:-${GW_PORTS[0]}}" \
		"CHAT_TLS_BIND=127.0.0.1:$TLS_PORT" "CHAT_TLS_CRT=$TLS_DIR/server.pem" \
		"CHAT_CONN_RATE_LIMIT=$CONN_RATE_LIMIT"
}

# ensure_tls: the local CA and the server certificate HAProxy serves on CHAT_TLS_PORT (tls/,
# see the top of this file), made with the openssl command when missing or about to expire.
# Both keys are EC P-256; the server certificate names 127.0.0.1, ::1 and localhost, lives 397
# days (what browsers accept) and is signed by the CA, which lives 10 years and may sign nothing
# but this cluster's server certificates (pathlen 0). Trust ca.crt, not server.crt: the CA
# stays when the server certificate is renewed.
ensure_tls() {
	command -v openssl >/dev/null 2>&1 || die "openssl not found: run scripts/deps.sh"
	local ca=$TLS_DIR/ca.crt ca_key=$TLS_DIR/ca.key crt=$TLS_DIR/server.crt key=$TLS_DIR/server.key
	local pem=$TLS_DIR/server.pem log=$LOGS/tls.log ext
	mkdir -p "$TLS_DIR" "$LOGS"
	chmod 700 "$TLS_DIR"
	if [ ! -s "$ca" ] || [ ! -s "$ca_key" ] ||
		! openssl x509 -in "$ca" -noout -checkend 86400 >/dev/null 2>&1; then
		say "making a local certificate authority in $ca"
		rm -f "$crt" "$key" "$pem"
		(umask 077 && openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$ca_key" -out "$ca" -days 3650 -sha256 \
			-subj "/O=chat gateway local cluster/CN=chat local CA $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
			-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
			-addext "keyUsage=critical,keyCertSign,cRLSign") >>"$log" 2>&1 ||
			die "openssl could not make the CA; see $log"
		chmod 644 "$ca"
	fi
	if [ -s "$pem" ] && [ -s "$crt" ] &&
		openssl x509 -in "$crt" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 &&
		openssl verify -CAfile "$ca" "$crt" >/dev/null 2>&1; then
		return 0
	fi
	say "making the server certificate for 127.0.0.1 and localhost in $crt"
	ext=$(mktemp)
	printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
		"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" >"$ext"
	if ! (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$key" -out "$TLS_DIR/server.csr" -subj "/CN=localhost" &&
		openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$ca" -CAkey "$ca_key" \
			-set_serial "0x$(openssl rand -hex 16)" -days 397 -sha256 -extfile "$ext" -out "$crt" &&
		cat "$crt" "$key" >"$pem.tmp" && mv "$pem.tmp" "$pem") >>"$log" 2>&1; then
		rm -f "$ext"
		die "openssl could not make the server certificate; see $log"
	fi
	rm -f "$ext" "$TLS_DIR/server.csr"
}

start_haproxy() {
	command -v haproxy >/dev/null 2>&1 || die "haproxy not found: run scripts/deps.sh"
	check_port_free "$PUBLIC_PORT" "HAProxy"
	check_port_free "$TLS_PORT" "HAProxy https"
	ensure_tls
	check_port_free "$STATS_PORT" "HAProxy stats"
	local cfg args=() a
	cfg=$(haproxy_cfg)
	while IFS= read -r -d '' a; do args+=("$a"); done < <(haproxy_env)
	"${args[@]}" haproxy -c -q -f "$cfg" >>"$LOGS/haproxy.log" 2>&1 || {
		log_tail haproxy
		die "haproxy rejects $cfg"
	}
	say "starting haproxy on 127.0.0.1:$PUBLIC_PORT, https on :$TLS_PORT (stats on :$STATS_PORT)"
	# -db: foreground, no daemon, so the pid file holds HAProxy itself.
	launch haproxy "${args[@]}" haproxy -db -f "$cfg"
}
https_ok() { curl -fsS -o /dev/null --max-time 2 --cacert "$TLS_DIR/ca.crt" "$1" 2>/dev/null; }
haproxy_ok() { http_ok "http://127.0.0.1:$PUBLIC_PORT/healthz" && https_ok "https://127.0.0.1:$TLS_PORT/healthz"; }
wait_haproxy() { wait_ready haproxy haproxy_ok; }

# A configuration reload without dropping a connection: the new process binds the same ports
# (SO_REUSEPORT) and then sends the old one SIGUSR1 (-sf), which closes its listeners and exits
# once its last connection has ended.
reload_haproxy() {
	local old cfg args=() a
	old=$(pid_of haproxy) || die "haproxy is not running (scripts/cluster.sh start haproxy)"
	cfg=$(haproxy_cfg)
	while IFS= read -r -d '' a; do args+=("$a"); done < <(haproxy_env)
	"${args[@]}" haproxy -c -q -f "$cfg" >>"$LOGS/haproxy.log" 2>&1 || {
		log_tail haproxy
		die "haproxy rejects $cfg; the running one (pid $old) stays"
	}
	echo "$old" >>"$RUN/haproxy-old.pids"
	say "reloading haproxy: the old process (pid $old) finishes its connections"
	launch haproxy "${args[@]}" haproxy -db -f "$cfg" -sf "$old"
	wait_haproxy
}

# Stops what reloads left behind (they exit by themselves once their connections end).
stop_old_haproxy() {
	local p
	[ -f "$RUN/haproxy-old.pids" ] || return 0
	while read -r p; do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = haproxy ] && kill -s TERM "$p" 2>/dev/null
	done <"$RUN/haproxy-old.pids"
	rm -f "$RUN/haproxy-old.pids"
}

# ---- one process by name

start_name() { # start_name NAME [nowait]
	local name=$1
	if is_running "$name"; then
		say "$name is already running (pid $(pid_of "$name"))"
		return 0
	fi
	case "$name" in
	kafka | kafka-*) start_kafka "$name" ;;
	postgres) start_postgres ;;
	ferretdb) start_ferretdb ;;
	gateway-*) start_gateway "${name#gateway-}" ;;
	persister) start_persister ;;
	haproxy) start_haproxy ;;
	*) die "unknown process '$name' ($(kafka_names | paste -sd, -), postgres, ferretdb, gateway-N, persister, haproxy)" ;;
	esac
	[ "${2:-}" = nowait ] || wait_name "$name"
}

wait_name() {
	case "$1" in
	kafka | kafka-*) wait_kafka "$1" ;;
	postgres) wait_postgres ;;
	ferretdb) wait_ferretdb ;;
	gateway-*) wait_gateway "${1#gateway-}" ;;
	persister) wait_persister ;;
	haproxy) wait_haproxy ;;
	esac
}

# stop_name NAME [SIGNAL]: TERM (default) and wait, then KILL; or KILL at once.
# PostgreSQL gets SIGINT instead of TERM: its fast shutdown (TERM would wait for every client
# to disconnect), sent to the postmaster alone, which stops its backends itself. Its backends
# lead process groups of their own, so a KILL goes to them by parent pid as well.
stop_name() {
	local name=$1 sig=${2:-TERM} pid timeout=$STOP_TIMEOUT deadline
	case "$name" in
	kafka | kafka-*) timeout=$((STOP_TIMEOUT * 3)) ;;
	postgres)
		timeout=$((STOP_TIMEOUT * 3))
		[ "$sig" != TERM ] || sig=INT
		;;
	esac
	if ! pid=$(pid_of "$name"); then
		rm -f "$RUN/$name.pid" "$RUN/$name.start"
		return 0
	fi
	if [ "$sig" = INT ]; then
		kill -s INT "$pid" 2>/dev/null || true
	elif [ "$name" = postgres ] && [ "$sig" = KILL ]; then
		pkill -KILL -P "$pid" 2>/dev/null || true
		kill -s KILL "$pid" 2>/dev/null || true
	else
		# The process leads its own process group (setsid): signal the group.
		kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || true
	fi
	deadline=$((SECONDS + timeout))
	while is_running "$name"; do
		if [ "$sig" != KILL ] && [ $SECONDS -ge $deadline ]; then
			warn "$name (pid $pid) still running ${timeout}s after SIG$sig: SIGKILL"
			sig=KILL
			[ "$name" != postgres ] || pkill -KILL -P "$pid" 2>/dev/null || true
			kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null || true
		fi
		sleep 0.1
	done
	rm -f "$RUN/$name.pid" "$RUN/$name.start"
	echo "stopped $name (pid $pid, SIG$sig)"
}

# ---------------------------------------------------------------- commands

cmd_services() {
	resolve_settings
	command -v curl >/dev/null 2>&1 || die "curl not found: run scripts/deps.sh"
	write_settings
	local started=() k
	# Every Kafka node first, then the waits: a node of a quorum is up only once a majority is.
	for k in $(kafka_names); do
		is_running "$k" || {
			start_name "$k" nowait
			started+=("$k")
		}
	done
	# FerretDB's backend first (a second or two; initdb adds a few on first use).
	[ "$STORE_BACKEND" != pg ] || start_name postgres
	is_running ferretdb || {
		start_name ferretdb nowait
		started+=(ferretdb)
	}
	local n store="sqlite in $DATA/ferretdb/sqlite"
	for n in "${started[@]}"; do wait_name "$n"; done
	[ "$STORE_BACKEND" != pg ] || store="postgres on 127.0.0.1:$PG_PORT"
	say "kafka ready on $KAFKA_BROKERS, ferretdb on $MONGO_URI ($store)"
}

cmd_up() {
	resolve_settings
	check_built
	jwt_secret_default
	write_settings
	cmd_services
	admin_init
	local i n
	for i in "${!GW_PORTS[@]}"; do start_name "gateway-$((i + 1))" nowait; done
	start_name persister nowait
	for i in "${!GW_PORTS[@]}"; do wait_name "gateway-$((i + 1))"; done
	wait_name persister
	start_name haproxy
	for n in $(all_names); do
		is_running "$n" || die "$n is not running; see $LOGS/$n.log"
	done
	say "chat cluster ready: http://127.0.0.1:$PUBLIC_PORT/ (stats http://127.0.0.1:$STATS_PORT/, logs in $LOGS)"
	say "over TLS: https://127.0.0.1:$TLS_PORT/ and wss://127.0.0.1:$TLS_PORT/ws; trust the CA in" \
		"$TLS_DIR/ca.crt (e.g. curl --cacert $TLS_DIR/ca.crt https://localhost:$TLS_PORT/healthz)"
}

cmd_down() {
	resolve_settings
	local names=() n p pids=()
	[ -d "$RUN" ] || {
		say "nothing running in $DATA"
		return 0
	}
	mapfile -t names < <(running_names_stop_order)
	stop_old_haproxy
	# Front to back: HAProxy, then the gateways (together), the persister, then Kafka and
	# FerretDB (together), so clients go first and the producers flush into a live broker;
	# PostgreSQL once FerretDB is gone.
	for n in "${names[@]}"; do
		case "$n" in
		gateway-*) stop_name "$n" & pids+=($!) ;;
		kafka | kafka-* | ferretdb | postgres) ;;
		*)
			for p in "${pids[@]}"; do wait "$p" || true; done
			pids=()
			stop_name "$n"
			;;
		esac
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
	pids=()
	has() { printf '%s\n' "${names[@]}" | grep -qx "$1"; }
	# Kafka nodes together: each one's controlled shutdown needs the quorum, which stopping them
	# one by one would lose before the last one.
	for n in "${names[@]}"; do
		case "$n" in
		kafka | kafka-*)
			stop_name "$n" &
			pids+=($!)
			;;
		esac
	done
	if has ferretdb || has postgres; then
		{
			! has ferretdb || stop_name ferretdb
			! has postgres || stop_name postgres
		} &
		pids+=($!)
	fi
	for p in "${pids[@]}"; do wait "$p" || true; done
	say "cluster in $DATA stopped"
}

cmd_status() {
	resolve_settings
	local n pid all=0
	for n in $(all_names); do
		if pid=$(pid_of "$n"); then
			printf '%-10s running (pid %s)\n' "$n" "$pid"
		else
			printf '%-10s stopped\n' "$n"
			all=3
		fi
	done
	echo "url: http://127.0.0.1:$PUBLIC_PORT/  https://127.0.0.1:$TLS_PORT/ (CA $TLS_DIR/ca.crt)  data: $DATA"
	return $all
}

# `run`'s handler for Ctrl-C and friends: stop everything, whatever happens to our output
# (a closed pipe must not cut the shutdown short).
run_stop() {
	trap '' INT TERM HUP PIPE
	set +e
	echo
	say "stopping"
	cmd_down
	exit 0
}

cmd_run() {
	local parent=$PPID
	trap run_stop INT TERM HUP
	cmd_up
	say "running in the foreground; Ctrl-C stops the cluster"
	local n reported=" "
	while true; do
		sleep 2 &
		wait $! || true
		# Whoever ran us is gone (killed without passing the signal on): stop too.
		if ! kill -0 "$parent" 2>/dev/null || [ "$(ppid_of $$)" != "$parent" ]; then
			run_stop >/dev/null 2>&1
		fi
		for n in $(all_names); do
			if ! is_running "$n" && [[ $reported != *" $n "* ]]; then
				warn "$n is not running (see $LOGS/$n.log; restart it: scripts/cluster.sh start $n)"
				reported+="$n "
			elif is_running "$n"; then
				reported=${reported/ $n / }
			fi
		done
	done
}

# up and run clean up after a failed start unless CHAT_KEEP_ON_FAIL=1.
on_up_failure() {
	local rc=$?
	[ $rc -ne 0 ] || return 0
	set +e
	trap '' PIPE
	[ ${#STARTED[@]} -gt 0 ] || exit $rc
	if [ "${CHAT_KEEP_ON_FAIL:-0}" = 1 ]; then
		warn "start failed; leaving what it started running (CHAT_KEEP_ON_FAIL=1)"
	else
		warn "start failed; stopping what it started: ${STARTED[*]} (CHAT_KEEP_ON_FAIL=1 keeps it)"
		local i
		for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
			stop_name "${STARTED[$i]}" >&2 || true
		done
	fi
	exit $rc
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case "$cmd" in
	up | run | services)
		# A cluster already (partly) running from this data directory keeps its settings.
		if any_running; then load_saved_settings; fi
		;;
	*) load_saved_settings ;;
	esac
	case "$cmd" in
	up)
		trap on_up_failure EXIT
		cmd_up
		trap - EXIT
		;;
	run)
		trap on_up_failure EXIT
		cmd_run
		;;
	services)
		trap on_up_failure EXIT
		cmd_services
		trap - EXIT
		;;
	down) cmd_down ;;
	status) cmd_status ;;
	env)
		[ -f "$ENV_FILE" ] || die "no $ENV_FILE: the cluster was never started with up"
		cat "$ENV_FILE"
		;;
	start | stop | kill | restart)
		[ $# -eq 1 ] || die "usage: cluster.sh $cmd NAME"
		resolve_settings
		mkdir -p "$DATA" "$LOGS" "$RUN"
		case "$cmd" in
		start)
			case "$1" in gateway-* | persister) jwt_secret_default ;; esac
			start_name "$1"
			;;
		stop) stop_name "$1" ;;
		kill) stop_name "$1" KILL ;;
		restart)
			stop_name "$1"
			case "$1" in gateway-* | persister) jwt_secret_default ;; esac
			start_name "$1"
			;;
		esac
		;;
	reload)
		[ "${1:-}" = haproxy ] || die "usage: cluster.sh reload haproxy"
		resolve_settings
		reload_haproxy
		;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
