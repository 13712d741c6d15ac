#!/usr/bin/env bash
# bench.sh: what `make bench` runs. Starts a throwaway local cluster on its own ports (two
# gateways, Kafka, FerretDB on PostgreSQL, the persister), runs the named scenarios with the C
# load generator (build/tests/chat-loadgen) against gateway-1 (senders) and gateway-2 (readers,
# so latency is send -> delivery on another gateway; gateway-2's CPU per delivery is reported),
# prints one table and writes the figures to bench-results.json, then stops the cluster.
# Figures, not pass/fail: nothing here is a test.
#
#   scripts/bench.sh                 every scenario that fits this machine
#   scripts/bench.sh fanout-100x100  one (or several) by name
#   scripts/bench.sh --list          the scenarios
#
# Scenarios (connections x total messages per second into one room):
#   floor           not the gateway: the kernel's CPU per 120-byte frame sent on 1,000 loopback
#                   connections, 1, 4, 16 and 64 frames per send() (build/tests/chat-send-floor),
#                   the floor under the fan-out figures, measured in the same run
#   idle-10k        10,000 idle authenticated connections in 100 rooms: gateway RSS growth per
#                   connection, over all of them and over the second 5,000 alone (what start-up
#                   and the first connect burst cost once is not in that one), and from the two
#                   an estimate for 100,000 where the file limit does not allow idle-100k
#   idle-19k        the same with 19,000: the most a file limit of 20,000 takes
#   idle-100k       the same with 100,000 (needs a file limit above 100,064)
#   fanout-100x100  100 members, 100 msg/s: 10,000 deliveries/s
#   fanout-1000x200 1,000 members, 200 msg/s: 200,000 deliveries/s
#   fanout-1000x1000 1,000 members, 1,000 msg/s: 1,000,000 deliveries/s
#   storm-10k       10,000 connected clients join one room at once
#   join-200        200 clients join, one at a time, a room with 100 messages in memory: the
#                   time from each join to its joined answer
#   skip-5000       5,000 msg/s into 100 rooms whose members are all on gateway-1: gateway-2
#                   reads every record and has no member of any room: its CPU per record is
#                   what every gateway pays for the cluster's whole message rate
#   persister-100k  100,000 messages produced through the gateways, then a fresh persister
#                   drains the topic into a fresh database; beside it the store's own
#                   bulk-insert rate (tests/bench/persister_rate.py), same batch size
# Environment: BENCH_SECONDS (per fan-out scenario, default 10), BENCH_OUT (the JSON file,
# default bench-results.json), CHAT_BENCH_PORT_BASE (default 38080), plus CHAT_* settings passed
# to the gateways (e.g. CHAT_LOG_BYTES).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
LOADGEN=$REPO/build/tests/chat-loadgen
FLOOR=$REPO/build/tests/chat-send-floor
SECONDS_EACH=${BENCH_SECONDS:-10}
OUT=${BENCH_OUT:-$REPO/bench-results.json}
BASE=${CHAT_BENCH_PORT_BASE:-38080}
ALL=(floor idle-10k idle-19k idle-100k fanout-100x100 fanout-1000x200 fanout-1000x1000 storm-10k join-200
	skip-5000
	persister-100k)

say() { echo "==> $*"; }
die() {
	echo "bench.sh: error: $*" >&2
	exit 1
}

args_of() { # the load generator's arguments for a scenario
	case $1 in
	floor) echo "--conns 1000 --frames 400000 --per-send 1,4,16,64" ;;
	idle-10k) echo "--conns 10000 --rooms 100 --senders 0 --idle 5 --join-only" ;;
	idle-19k) echo "--conns 19000 --rooms 190 --senders 0 --idle 5 --join-only" ;;
	idle-100k) echo "--conns 100000 --rooms 1000 --senders 0 --idle 5 --join-only --sources 250" ;;
	fanout-100x100) echo "--conns 100 --rooms 1 --senders 10 --rate 100 --seconds $SECONDS_EACH" ;;
	fanout-1000x200) echo "--conns 1000 --rooms 1 --senders 20 --rate 200 --seconds $SECONDS_EACH" ;;
	fanout-1000x1000) echo "--conns 1000 --rooms 1 --senders 50 --rate 1000 --seconds $SECONDS_EACH" ;;
	storm-10k) echo "--conns 10000 --rooms 1 --senders 0 --storm" ;;
	join-200) echo "--conns 200 --rooms 1 --senders 0 --join-only --join-window 1 --prefill 100" ;;
	# every connection a sender (all on gateway-1); gateway-2 only reads
	skip-5000) echo "--conns 100 --rooms 100 --senders 100 --rate 5000 --seconds $SECONDS_EACH" ;;
	# the backlog the persister drains: 100 senders in 20 rooms, 10,000 msg/s for 10 s
	persister-100k) echo "--conns 100 --rooms 20 --senders 100 --rate 10000 --seconds 10" ;;
	*) return 1 ;;
	esac
}

if [ "${1:-}" = --list ]; then
	printf '%s\n' "${ALL[@]}"
	exit 0
fi
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=("${ALL[@]}")
for s in "${SCENARIOS[@]}"; do
	args_of "$s" >/dev/null || die "unknown scenario '$s' (scripts/bench.sh --list)"
done
[ -x "$LOADGEN" ] || die "$LOADGEN is missing: make build-release first (make bench does)"
[ -x "$FLOOR" ] || die "$FLOOR is missing: make build-release first (make bench does)"
VENV_PY=${CHAT_CACHE_DIR:-$HOME/.cache/chat-gateway}/venv/bin/python
[ -x "$VENV_PY" ] || die "$VENV_PY is missing: scripts/deps.sh makes it (make bench does)"

# file limits: the load generator and the gateways inherit this shell's
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
LIMIT=$(ulimit -n)

DATA=$(mktemp -d /tmp/chat-bench-XXXXXX)
export CHAT_DATA_DIR=$DATA CHAT_PUBLIC_PORT=$BASE CHAT_GATEWAY_PORTS=$((BASE + 1)),$((BASE + 2))
export CHAT_STATS_PORT=$((BASE + 4)) CHAT_TLS_PORT=$((BASE + 5)) CHAT_KAFKA_PORT=$((BASE + 10))
export CHAT_MONGO_PORT=$((BASE + 20)) CHAT_PG_PORT=$((BASE + 30))
export CHAT_PERSISTER_METRICS_PORT=$((BASE + 6))
export CHAT_JWT_SECRET=${CHAT_JWT_SECRET:-bench-secret-0123456789abcdef}
# the load generator's senders send far above a person's rate
export CHAT_RATE=${CHAT_RATE:-1000000} CHAT_RATE_BURST=${CHAT_RATE_BURST:-1000000}
export CHAT_LOG_LEVEL=${CHAT_LOG_LEVEL:-warn}
cleanup() {
	say "stopping the bench cluster"
	scripts/cluster.sh down >/dev/null 2>&1
	rm -rf "$DATA"
}
trap cleanup EXIT
say "starting a bench cluster in $DATA (ports from $BASE)"
scripts/cluster.sh up >"$DATA/up.log" 2>&1 || {
	tail -n 30 "$DATA/up.log"
	die "the bench cluster did not start"
}
GW1=$(cat "$DATA/run/gateway-1.pid") GW2=$(cat "$DATA/run/gateway-2.pid")
# a warm broker: a few seconds of traffic before the first figure
say "warming up"
"$LOADGEN" --secret "$CHAT_JWT_SECRET" --port $((BASE + 1)) --port2 $((BASE + 2)) --conns 20 \
	--senders 5 --rate 200 --seconds 5 --name warmup >/dev/null

echo "[" >"$OUT.tmp"
first=1
for s in "${SCENARIOS[@]}"; do
	# shellcheck disable=SC2207
	a=($(args_of "$s"))
	conns=${a[1]}
	if [ $((conns + 64)) -gt "$LIMIT" ]; then
		say "$s: skipped: $conns connections need a file limit above $((conns + 64)) (this one: $LIMIT)"
		continue
	fi
	if [ "$s" = floor ]; then
		say "$s: chat-send-floor ${a[*]}"
		"$FLOOR" --json "$DATA/$s.json" "${a[@]}" || rm -f "$DATA/$s.json"
	else
		say "$s: chat-loadgen ${a[*]}"
		# fan-out: senders on gateway-1, readers on gateway-2, whose CPU and RSS are measured (it
		# does the deliveries); idle, storm and join: everyone on gateway-1
		port2=(--port2 $((BASE + 2))) pid=$GW2
		case $s in idle-* | storm-* | join-*) port2=() pid=$GW1 ;; esac
		"$LOADGEN" --secret "$CHAT_JWT_SECRET" --port $((BASE + 1)) "${port2[@]}" --pid "$pid" \
			--name "$s" --json "$DATA/$s.json" "${a[@]}"
		if [ "$s" = persister-100k ]; then
			say "$s: tests/bench/persister_rate.py (the store alone, then a fresh persister)"
			# the store to ourselves: the cluster's persister waits (it would still be storing
			# the backlog just produced)
			scripts/cluster.sh stop persister >/dev/null
			"$VENV_PY" tests/bench/persister_rate.py --mongo-port "$CHAT_MONGO_PORT" \
				--kafka-port "$CHAT_KAFKA_PORT" --persister "$REPO/build/persister/chat-persister" \
				--messages 100000 --json "$DATA/$s.json" || rm -f "$DATA/$s.json"
			scripts/cluster.sh start persister >/dev/null
		fi
	fi
	if [ -f "$DATA/$s.json" ]; then
		[ $first = 1 ] || echo "," >>"$OUT.tmp"
		cat "$DATA/$s.json" >>"$OUT.tmp"
		first=0
	fi
done
echo "]" >>"$OUT.tmp"
mv "$OUT.tmp" "$OUT"

echo
python3 - "$OUT" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
print(f"{'scenario':<18} {'conns':>7} {'msg/s':>6} {'deliveries/s':>12} {'p50 ms':>7} {'p99 ms':>7} "
      f"{'gw us/deliv':>11} {'B/idle conn':>11} {'join s':>7} {'join p50/p99 ms':>15} "
      f"{'loadgen':>7}")
for r in rows:
    if r["name"] in ("persister", "skip-5000", "floor"):
        continue
    dps = r["delivered"] / r["seconds"] if r["seconds"] and r["delivered"] else 0
    print(f"{r['name']:<18} {r['conns']:>7} {r['rate']:>6.0f} {dps:>12.0f} {r['p50_ms']:>7.2f} "
          f"{r['p99_ms']:>7.2f} {r['gateway_us_per_delivery']:>11.2f} "
          f"{r['idle_bytes_per_conn']:>11.0f} {r['join_s']:>7.2f} "
          f"{r['join_p50_ms']:>7.2f}/{r['join_p99_ms']:<7.2f} "
          f"{100 * r['loadgen_cpu']:>6.0f}%{' SATURATED' if r['saturated'] else ''}")
for r in rows:
    if r["name"].startswith("idle-") and r.get("idle_bytes_second_half"):
        n, avg, half = r["joined"], r["idle_bytes_per_conn"], r["idle_bytes_second_half"]
        n2 = r["idle_second_half_conns"]
        # the second half's growth per connection stands for every further one: checked against
        # idle-19k's total less idle-10k's, (19,000 x 1,966 - 10,000 x 2,036) / 9,000 = 1,888 B
        est = (avg * n + half * (100000 - n)) / 100000 if n < 100000 else avg
        print(f"\n{r['name']}: gateway RSS growth per idle connection: {avg:.0f} B over all "
              f"{n}, {half:.0f} B each over the second {n2} (without what start-up and "
              f"the first connect burst cost once)"
              + (f"; 100,000 connections, extrapolated from these: {est:.0f} B each"
                 if n < 100000 else ""))
    if r["name"] == "floor":
        figs = ", ".join(f"{k}: {us:.2f}" for k, us in zip(r["per_send"], r["us_per_frame"]))
        print(f"\nfloor: the kernel's CPU per {r['frame']}-byte frame on {r['conns']} loopback "
              f"connections, by frames per send() (us): {figs}")
    if r["name"] == "skip-5000":
        print(f"\nskip-5000: a gateway with no member of any room: "
              f"{r['gateway_us_per_record']:.2f} us of CPU per record read "
              f"({r['sent']} records in {r['seconds']}s)")
    if r["name"] == "persister":
        print(f"\npersister: {r['persister_docs_per_s']} docs/s ({r['persister_docs']} documents "
              f"in {r['persister_seconds']}s, batches of {r['batch']}); the store alone: "
              f"{r['store_docs_per_s']} docs/s; ratio {100 * r['ratio']:.0f}%")
PY
say "figures in $OUT"
