#!/usr/bin/env bash
# check_manifests.sh: offline checks of everything under deploy/ that no machine here runs
# (there is no Docker engine and no Kubernetes cluster): the Kubernetes manifests against the
# real API schemas (kubernetes-validate, strict: unknown fields fail), the project's own rules
# for them (k8s_policy.py: also the drain and grace-period arithmetic, the HPA against HAProxy's
# slots, a PodDisruptionBudget per Deployment), the optional Strimzi KafkaTopic in
# deploy/k8s/strimzi/ against Strimzi's own Java model and Kafka's topic-config rules
# (tests/deploy/strimzi-topic/, needs mvn, java and Maven Central or a warm ~/.m2), the HAProxy
# configs with `haproxy -c`, docker-compose.yml with `docker-compose config -q`, and the
# Dockerfile's basic shape.
#
# Prints one PASS/FAIL/SKIP line per check and exits non-zero when anything failed.
#
#   tests/deploy/check_manifests.sh
#
# kubernetes-validate lives in the project venv ${CHAT_CACHE_DIR:-~/.cache/chat-gateway}/venv
# (scripts/deps.sh installs it from scripts/e2e-requirements.txt); when it is missing this script
# creates the venv and installs it. KUBE_VERSIONS (default "1.29.0 1.37.0": an old but supported
# release and the newest bundled one) picks the API versions to validate against.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CHAT_CACHE_DIR:-$HOME/.cache/chat-gateway}
VENV=$CACHE/venv
K8S_DIR=$REPO/deploy/k8s
KUBE_VERSIONS=${KUBE_VERSIONS:-1.29.0 1.37.0}

passed=0
failed=0
skipped=0
pass() {
	echo "PASS $*"
	passed=$((passed + 1))
}
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
skip() {
	echo "SKIP $*"
	skipped=$((skipped + 1))
}
indent() { sed 's/^/    /'; }

cd "$REPO" || exit 2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- the validator

kv_pin() {
	# the version scripts/deps.sh installs, so both install the same thing
	local pin
	pin=$(grep -ihE '^kubernetes-validate[=<>~]' "$REPO/scripts/e2e-requirements.txt" 2>/dev/null |
		head -1)
	echo "${pin:-kubernetes-validate==1.37.0}"
}

ensure_validator() {
	if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import kubernetes_validate, yaml' \
		2>/dev/null; then
		return 0
	fi
	echo "==> installing $(kv_pin) into $VENV"
	if [ ! -x "$VENV/bin/python" ]; then
		python3 -m venv "$VENV" || return 1
	fi
	"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$(kv_pin)" || return 1
}

# ---------------------------------------------------------------- Kubernetes schemas

check_k8s_schemas() {
	local f v out rc kinds
	for f in "$K8S_DIR"/*.yaml; do
		[ "$(basename "$f")" = kustomization.yaml ] && continue
		for v in $KUBE_VERSIONS; do
			out=$("$VENV/bin/kubernetes-validate" --strict -k "$v" "$f" 2>&1)
			rc=$?
			# a WARN means no schema was found (a wrong apiVersion or kind): a failure here
			if [ $rc -eq 0 ] && ! grep -qvE '^INFO ' <<<"$out" && grep -q '^INFO ' <<<"$out"; then
				kinds=$(sed -nE 's/.* for resource ([^ ]+) against.*/\1/p' <<<"$out" | paste -sd' ')
				pass "${f#"$REPO"/} valid against Kubernetes $v ($kinds)"
			else
				fail "${f#"$REPO"/} against Kubernetes $v:"
				indent <<<"$out"
			fi
		done
	done
}

# ---------------------------------------------------------------- project rules

check_k8s_policy() {
	local out rc
	out=$("$VENV/bin/python" "$REPO/tests/deploy/k8s_policy.py" "$K8S_DIR" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "deploy/k8s project rules ($(grep -c '^PASS' <<<"$out") checks, tests/deploy/k8s_policy.py)"
	else
		fail "deploy/k8s project rules:"
		grep -v '^PASS' <<<"$out" | indent
	fi
}

# ---------------------------------------------------------------- Strimzi KafkaTopic

check_strimzi() {
	local dir=$K8S_DIR/strimzi proj=$REPO/tests/deploy/strimzi-topic f v out rc t0 mine theirs
	local mvn_log=$TMP/strimzi-mvn.log
	# kubernetes-validate bundles the built-in API schemas only: say so rather than pass
	for f in "$dir"/*.yaml; do
		[ "$(basename "$f")" = kustomization.yaml ] && continue
		for v in $KUBE_VERSIONS; do
			out=$("$VENV/bin/kubernetes-validate" --strict -k "$v" "$f" 2>&1)
			rc=$?
			if grep -q "Couldn't find schema" <<<"$out"; then
				skip "${f#"$REPO"/} with kubernetes-validate (Kubernetes $v): it has no schemas" \
					"for custom resources ($(sed -nE 's/.*for kind ([^ ]+) with api version ([^ ]+) .*/\2 \1/p' <<<"$out" | head -1));" \
					"checked against Strimzi's Java model instead (below)"
			elif [ $rc -eq 0 ] && ! grep -qvE '^INFO ' <<<"$out"; then
				pass "${f#"$REPO"/} valid against Kubernetes $v"
			else
				fail "${f#"$REPO"/} against Kubernetes $v:"
				indent <<<"$out"
			fi
		done
	done
	# the Kafka version of the check's pom is the broker's (deploy/kafka/pom.xml)
	mine=$(sed -nE 's|.*<kafka.version>(.*)</kafka.version>.*|\1|p' "$proj/pom.xml")
	theirs=$(sed -nE 's|.*<kafka.version>(.*)</kafka.version>.*|\1|p' "$REPO/deploy/kafka/pom.xml")
	if [ -n "$mine" ] && [ "$mine" = "$theirs" ]; then
		pass "tests/deploy/strimzi-topic/pom.xml validates topic settings with Kafka $mine, the broker's"
	else
		fail "tests/deploy/strimzi-topic/pom.xml kafka.version '$mine' is not deploy/kafka/pom.xml's '$theirs'"
	fi
	if ! command -v mvn >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
		fail "deploy/k8s/strimzi against Strimzi's model: mvn or a JDK (javac) not installed" \
			"(scripts/deps.sh installs maven and openjdk-17-jdk-headless)"
		return
	fi
	t0=$(date +%s)
	# short-lived JVMs: the C1 compiler alone and the serial GC halve their CPU time here
	local jvm_opts="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
	# the classpath of the pom (Strimzi's io.strimzi:api, Jackson YAML, kafka-storage): from
	# ~/.m2, or downloaded from Maven Central the first time. The plugin is named in full so that
	# a warm ~/.m2 needs no network at all (no plugin-version lookup).
	if ! MAVEN_OPTS="${MAVEN_OPTS:-} $jvm_opts" mvn -B -q -f "$proj/pom.xml" \
		org.apache.maven.plugins:maven-dependency-plugin:3.6.1:build-classpath \
		-Dmdep.outputFile="$TMP/strimzi-cp.txt" >"$mvn_log" 2>&1; then
		sed -i 's/\x1b\[[0-9;]*m//g' "$mvn_log"
		if grep -qiE 'Could not transfer|Unknown ?host|Connection refused|timed out|Network is unreachable|No route to host|name resolution' "$mvn_log"; then
			skip "deploy/k8s/strimzi against Strimzi's model: Maven Central is unreachable and" \
				"~/.m2 lacks the check's dependencies (io.strimzi:api etc.):" \
				"$(grep -m1 -iE 'Could not transfer|Unknown ?host|Connection refused|timed out|unreachable|No route|name resolution' "$mvn_log" | cut -c1-300)"
		else
			fail "deploy/k8s/strimzi against Strimzi's model: mvn could not resolve tests/deploy/strimzi-topic/pom.xml:"
			grep -v '^\s*$' "$mvn_log" | tail -n 15 | indent
		fi
		return
	fi
	# Java's source launcher compiles and runs the one class; stderr (SLF4J's notice) only
	# when it fails
	# shellcheck disable=SC2086
	out=$(java $jvm_opts -cp "$(cat "$TMP/strimzi-cp.txt")" "$proj/StrimziTopicCheck.java" \
		"$REPO" 2>"$TMP/strimzi-java.err")
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "deploy/k8s/strimzi KafkaTopic against Strimzi's model ($(grep -c '^PASS' <<<"$out") checks," \
			"tests/deploy/strimzi-topic, $(($(date +%s) - t0)) s)"
	else
		fail "deploy/k8s/strimzi KafkaTopic against Strimzi's model (tests/deploy/strimzi-topic):"
		{
			grep -v '^PASS' <<<"$out"
			grep -v '^SLF4J' "$TMP/strimzi-java.err"
		} | indent
	fi
}

# ---------------------------------------------------------------- HAProxy

check_haproxy() {
	if ! command -v haproxy >/dev/null 2>&1; then
		skip "HAProxy configs: haproxy not installed (scripts/deps.sh installs it)"
		return
	fi
	local out
	# the shared config, with the values docker-compose.yml gives it
	if out=$(CHAT_PUBLIC_BIND=:8080 CHAT_STATS_BIND=:8404 CHAT_GW1_ADDR=gateway1:8081 \
		CHAT_GW2_ADDR=gateway2:8081 haproxy -c -f deploy/haproxy/haproxy.cfg 2>&1); then
		pass "deploy/haproxy/haproxy.cfg with docker-compose's environment (haproxy -c)"
	else
		fail "deploy/haproxy/haproxy.cfg with docker-compose's environment:"
		indent <<<"$out"
	fi
	# the Kubernetes one, embedded in its ConfigMap
	if ! "$VENV/bin/python" - "$K8S_DIR/40-haproxy.yaml" "$TMP/haproxy-k8s.cfg" <<'EOF'; then
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "ConfigMap" and "haproxy.cfg" in (d.get("data") or {}):
        open(sys.argv[2], "w").write(d["data"]["haproxy.cfg"])
        sys.exit(0)
sys.exit(1)
EOF
		fail "deploy/k8s/40-haproxy.yaml: no ConfigMap with a haproxy.cfg key"
		return
	fi
	if out=$(haproxy -c -f "$TMP/haproxy-k8s.cfg" 2>&1); then
		pass "deploy/k8s/40-haproxy.yaml haproxy.cfg (haproxy -c)"
	else
		fail "deploy/k8s/40-haproxy.yaml haproxy.cfg:"
		indent <<<"$out"
	fi
	check_haproxy_tls
}

# Both configs with their TLS listener on, with a throwaway certificate laid out as each
# deployment mounts it: a directory of PEM files (docker-compose), and chat.pem with its key
# beside it in chat.pem.key (the Kubernetes TLS Secret's tls.crt and tls.key).
check_haproxy_tls() {
	local certs=$TMP/certs out
	if ! command -v openssl >/dev/null 2>&1; then
		skip "HAProxy configs with TLS: openssl not installed (scripts/deps.sh installs it)"
		return
	fi
	mkdir -p "$certs/k8s"
	if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=localhost -keyout "$certs/k8s/chat.pem.key" -out "$certs/k8s/chat.pem" \
		>/dev/null 2>&1; then
		fail "HAProxy configs with TLS: openssl could not make a throwaway certificate"
		return
	fi
	cat "$certs/k8s/chat.pem" "$certs/k8s/chat.pem.key" >"$certs/chat.pem"
	if out=$(CHAT_PUBLIC_BIND=:8080 CHAT_STATS_BIND=:8404 CHAT_GW1_ADDR=gateway1:8081 \
		CHAT_GW2_ADDR=gateway2:8081 CHAT_TLS_BIND=:8443 CHAT_TLS_CRT="$certs/" \
		CHAT_CONN_RATE_LIMIT=1000 haproxy -c -f deploy/haproxy/haproxy.cfg 2>&1); then
		pass "deploy/haproxy/haproxy.cfg with TLS on (CHAT_TLS_BIND, a directory of PEM files)"
	else
		fail "deploy/haproxy/haproxy.cfg with TLS on:"
		indent <<<"$out"
	fi
	if out=$(CHAT_TLS_CRT="$certs/k8s/chat.pem" CHAT_CONN_RATE_LIMIT=1000 \
		haproxy -c -f "$TMP/haproxy-k8s.cfg" 2>&1); then
		pass "deploy/k8s/40-haproxy.yaml haproxy.cfg with TLS on (the Secret's layout)"
	else
		fail "deploy/k8s/40-haproxy.yaml haproxy.cfg with TLS on:"
		indent <<<"$out"
	fi
}

# ---------------------------------------------------------------- docker-compose

check_compose() {
	local dc=() out
	if command -v docker-compose >/dev/null 2>&1; then
		dc=(docker-compose)
	elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
		dc=(docker compose)
	else
		fail "docker-compose.yml: docker-compose not installed (apt-get install docker-compose)"
		return
	fi
	# no variable from the caller's environment may change the verdict
	if out=$(env -u CHAT_JWT_SECRET -u CHAT_DEV_TOKENS -u CHAT_PUBLIC_PORT -u CHAT_STATS_PORT \
		-u CHAT_LOG_LEVEL -u CHAT_TLS_BIND -u CHAT_TLS_DIR -u CHAT_TLS_PORT -u CHAT_CONN_RATE_LIMIT "${dc[@]}" -f docker-compose.yml config -q 2>&1); then
		pass "docker-compose.yml (${dc[*]} config -q)"
	else
		fail "docker-compose.yml (${dc[*]} config -q):"
		indent <<<"$out"
		return
	fi
	# the services, and that the gateways wait for init to finish
	out=$("${dc[@]}" -f docker-compose.yml config --services 2>/dev/null | sort | paste -sd' ')
	if [ "$out" = "gateway1 gateway2 haproxy init kafka mongo persister" ]; then
		pass "docker-compose.yml services: $out"
	else
		fail "docker-compose.yml services: got '$out'"
	fi
	if "${dc[@]}" -f docker-compose.yml config 2>/dev/null |
		grep -A2 -E '^ {6}init:$' | grep -q 'condition: service_completed_successfully'; then
		pass "docker-compose.yml: services wait for init to complete"
	else
		fail "docker-compose.yml: no service waits for init (condition: service_completed_successfully)"
	fi
}

# ---------------------------------------------------------------- Dockerfile

check_dockerfile() {
	local f=deploy/Dockerfile problems=() src b
	[ -f "$f" ] || {
		fail "$f: missing"
		return
	}
	grep -qE '^FROM debian:12 AS build' "$f" || problems+=("build stage is not debian:12")
	grep -qE '^FROM debian:12-slim' "$f" || problems+=("runtime stage is not debian:12-slim")
	grep -qE '^USER [1-9][0-9]*(:[0-9]+)?$' "$f" || problems+=("no numeric non-root USER")
	grep -qE '^EXPOSE 8081$' "$f" || problems+=("no EXPOSE 8081")
	grep -qE '^CMD \["chat-gateway"\]$' "$f" || problems+=("default CMD is not chat-gateway")
	for b in chat-gateway chat-persister chat-admin chat-token; do
		grep -q "$b" "$f" || problems+=("does not install $b")
	done
	# every COPY from the build context names something that exists
	while read -r src; do
		[ -e "$src" ] || problems+=("COPY source $src does not exist")
	done < <(grep -E '^COPY ' "$f" | grep -v -- '--from=' | awk '{for (i = 2; i < NF; i++) print $i}')
	if [ ${#problems[@]} -eq 0 ]; then
		pass "$f (stages, user, port, command, COPY sources)"
	else
		fail "$f:"
		printf '%s\n' "${problems[@]}" | indent
	fi
}

# ----------------------------------------------------------------

if ensure_validator; then
	check_k8s_schemas
	check_k8s_policy
	check_strimzi
else
	fail "could not install $(kv_pin) into $VENV (see the pip output above)"
fi
check_haproxy
check_compose
check_dockerfile

echo "check_manifests: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
