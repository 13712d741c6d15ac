#!/usr/bin/env python3
"""k8s_policy.py: project rules for deploy/k8s/ that a schema cannot express.

The schema check (kubernetes-validate) says each manifest is well formed; this says it is the
deployment we mean: every workload runs non-root with a read-only root filesystem, no privilege
escalation and resource requests; the gateway has its two probes on the right paths and
2+ replicas; Services select pods that exist; the kustomization lists exactly the files here;
the gateway settings named in ConfigMaps are ones the gateway knows.

Usage: k8s_policy.py DIR   -> one "PASS/FAIL <file>: <what>" line per check, exit 1 on a failure.
Needs PyYAML (installed with kubernetes-validate).
"""
import os
import sys

import yaml

WORKLOAD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
# Settings of the gateway, persister and chat-admin (README.md, each program's --help); a typo
# here would be ignored silently by the programs, so catch it.
KNOWN_SETTINGS = {
    "CHAT_LISTEN", "CHAT_NODE_ID", "CHAT_KAFKA_BROKERS", "CHAT_KAFKA_TOPIC", "CHAT_MONGO_URI",
    "CHAT_MONGO_WORKERS", "CHAT_JWT_ALG", "CHAT_JWT_SECRET", "CHAT_JWT_PUBLIC_KEY",
    "CHAT_JWT_ISSUER", "CHAT_JWT_AUDIENCE", "CHAT_JWT_LEEWAY", "CHAT_AUTH_TIMEOUT",
    "CHAT_WEB_ROOT", "CHAT_DEV_TOKENS", "CHAT_MAX_TEXT", "CHAT_MAX_FRAME", "CHAT_MAX_ROOMS",
    "CHAT_HISTORY_LIMIT", "CHAT_RATE", "CHAT_RATE_BURST", "CHAT_SEND_QUEUE",
    "CHAT_SEND_QUEUE_BYTES", "CHAT_PING_INTERVAL", "CHAT_LOG_LEVEL", "CHAT_KAFKA_GROUP",
    "CHAT_BATCH_SIZE", "CHAT_BATCH_MS", "CHAT_KAFKA_SESSION_MS", "CHAT_SHUTDOWN_MS",
    "CHAT_PARTITIONS", "CHAT_REPLICATION", "CHAT_TIMEOUT", "CHAT_JWT_JWKS", "CHAT_TLS_CERT",
    "CHAT_TLS_KEY", "CHAT_LOG_FORMAT", "CHAT_METRICS_LISTEN",
    # HAProxy's (deploy/haproxy/haproxy.cfg)
    "CHAT_TLS_CRT", "CHAT_CONN_RATE_LIMIT",
}


class Report:
    def __init__(self):
        self.failed = 0

    def check(self, ok, where, what):
        print(f"{'PASS' if ok else 'FAIL'} {where}: {what}")
        if not ok:
            self.failed += 1


def pod_spec(doc):
    spec = doc.get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def check_workload(r, where, doc):
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    ps = pod_spec(doc)
    psc = ps.get("securityContext") or {}
    r.check(psc.get("runAsNonRoot") is True and isinstance(psc.get("runAsUser"), int)
            and psc["runAsUser"] != 0, where, f"{name} runs as a non-root numeric user")
    r.check((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", where,
            f"{name} uses the RuntimeDefault seccomp profile")
    r.check(ps.get("automountServiceAccountToken") is False, where,
            f"{name} does not mount a service account token")
    for c in ps.get("containers") or []:
        cn = f"{name} container {c.get('name')}"
        sc = c.get("securityContext") or {}
        r.check(sc.get("readOnlyRootFilesystem") is True, where, f"{cn} has a read-only root")
        r.check(sc.get("allowPrivilegeEscalation") is False, where,
                f"{cn} cannot escalate privileges")
        r.check(((sc.get("capabilities") or {}).get("drop") or []) == ["ALL"], where,
                f"{cn} drops all capabilities")
        res = c.get("resources") or {}
        r.check(bool((res.get("requests") or {}).get("cpu"))
                and bool((res.get("requests") or {}).get("memory"))
                and bool((res.get("limits") or {}).get("memory")), where,
                f"{cn} has cpu/memory requests and a memory limit")
        names = [e.get("name") for e in c.get("env") or []]
        unknown = [n for n in names if n.startswith("CHAT_") and n not in KNOWN_SETTINGS]
        r.check(not unknown, where, f"{cn} sets only known CHAT_* settings {unknown or ''}")


def check_gateway(r, where, doc):
    ps = pod_spec(doc)
    c = (ps.get("containers") or [{}])[0]
    ready = ((c.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    live = ((c.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
    r.check(ready == "/readyz", where, "gateway readiness probe is GET /readyz")
    r.check(live == "/healthz", where, "gateway liveness probe is GET /healthz")
    replicas = doc["spec"].get("replicas")
    r.check(isinstance(replicas, int) and replicas >= 2, where, "gateway runs 2+ replicas")
    env = {e.get("name"): e for e in c.get("env") or []}
    r.check("CHAT_NODE_ID" in env, where, "gateway sets CHAT_NODE_ID (pod name)")
    refs = [list(x.keys())[0] for x in c.get("envFrom") or []]
    r.check("secretRef" in refs, where, "gateway takes the JWT secret from a Secret")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "deploy/k8s"
    r = Report()
    files = sorted(f for f in os.listdir(d) if f.endswith((".yaml", ".yml")))
    resources = {}
    docs_by_file = {}
    for f in files:
        path = os.path.join(d, f)
        try:
            with open(path, encoding="utf-8") as fh:
                docs = [x for x in yaml.safe_load_all(fh) if x]
        except yaml.YAMLError as e:
            r.check(False, path, f"YAML parses ({e})")
            continue
        docs_by_file[f] = docs
        for doc in docs:
            if doc.get("kind") == "Kustomization":
                continue
            key = (doc.get("kind"), (doc.get("metadata") or {}).get("name"))
            r.check(key not in resources, path, f"{key[0]}/{key[1]} is defined once")
            resources[key] = doc
            ns = (doc.get("metadata") or {}).get("namespace")
            if doc.get("kind") != "Namespace":
                r.check(ns == "chat", path, f"{key[0]}/{key[1]} is in namespace chat")
            if doc.get("kind") in WORKLOAD_KINDS:
                check_workload(r, path, doc)
            if doc.get("kind") == "Deployment" and key[1] == "chat-gateway":
                check_gateway(r, path, doc)
            if doc.get("kind") == "ConfigMap" and key[1] == "chat-config":
                bad = [k for k in doc.get("data") or {} if k not in KNOWN_SETTINGS]
                r.check(not bad, path, f"chat-config holds only known settings {bad or ''}")

    # Services must select some workload's pods.
    pod_labels = []
    for (kind, _), doc in resources.items():
        if kind in WORKLOAD_KINDS:
            pod_labels.append(((doc["spec"].get("template") or {}).get("metadata") or {})
                              .get("labels") or {})
    for (kind, name), doc in resources.items():
        if kind != "Service":
            continue
        sel = (doc.get("spec") or {}).get("selector") or {}
        hit = any(all(lbl.get(k) == v for k, v in sel.items()) for lbl in pod_labels)
        r.check(bool(sel) and hit, f"{d}", f"Service/{name} selects existing pods")

    # Every envFrom / secret reference names an object defined here.
    for (kind, name), doc in resources.items():
        if kind not in WORKLOAD_KINDS:
            continue
        for c in pod_spec(doc).get("containers") or []:
            for ref in c.get("envFrom") or []:
                for rk, obj in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if rk in ref:
                        r.check((obj, ref[rk]["name"]) in resources, d,
                                f"{kind}/{name} references {obj}/{ref[rk]['name']}, defined here")

    # The kustomization lists exactly the manifest files.
    kfile = "kustomization.yaml"
    if kfile in docs_by_file:
        k = docs_by_file[kfile][0]
        listed = k.get("resources") or []
        others = [f for f in files if f != kfile]
        r.check(k.get("kind") == "Kustomization"
                and k.get("apiVersion") == "kustomize.config.k8s.io/v1beta1",
                os.path.join(d, kfile), "is a kustomize.config.k8s.io/v1beta1 Kustomization")
        r.check(sorted(listed) == others, os.path.join(d, kfile),
                f"lists exactly the manifests in {d} (missing {sorted(set(others) - set(listed))},"
                f" extra {sorted(set(listed) - set(others))})")
    else:
        r.check(False, d, "has a kustomization.yaml")

    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
