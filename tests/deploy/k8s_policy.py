#!/usr/bin/env python3
"""k8s_policy.py: project rules for deploy/k8s/ that a schema cannot express.

The schema check (kubernetes-validate) says each manifest is well formed; this says it is the
deployment we mean: every workload runs non-root with a read-only root filesystem, no privilege
escalation and resource requests; the gateway has its two probes on the right paths and
2+ replicas; Services select pods that exist; the kustomization lists exactly the files here;
the settings named in ConfigMaps and env are ones the programs know (read from their config
tables in the C sources). And the stopping and scaling rules:
- the gateway's terminationGracePeriodSeconds covers its preStop pause + CHAT_DRAIN_MS + the
  drain's 4 s close bound + a margin, and its liveness probe cannot fail often enough during a
  drain (when /healthz answers 503) to restart it; the persister's covers CHAT_SHUTDOWN_MS;
- an HPA targets an existing Deployment without its own `replicas`, and the gateways' HPA never
  outgrows HAProxy's server-template slots (maxReplicas + the rolling update's surge);
- every Deployment has exactly one PodDisruptionBudget, and none blocks a node drain.

Usage: k8s_policy.py DIR   -> one "PASS/FAIL <file>: <what>" line per check, exit 1 on a failure.
Needs PyYAML (installed with kubernetes-validate).
"""
import glob
import math
import os
import re
import sys

import yaml

WORKLOAD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# The config tables of the gateway, the persister and chat-admin ({"CHAT_X", CHAT_CFG_INT,
# "default", ...}): the settings the programs know, with their defaults. A misspelled setting
# would be ignored silently by the programs, so catch it.
CONFIG_SOURCES = ("gateway/src/*.c", "persister/src/*.c", "tools/*.c", "common/*.c")
CONFIG_ENTRY = re.compile(r'\{\s*"(CHAT_[A-Z0-9_]+)",\s*CHAT_CFG_[A-Z]+,\s*(?:"([^"]*)"|NULL)')
# The gateway exits within CHAT_DRAIN_MS + this after SIGTERM (README, "Stopping a gateway").
DRAIN_CLOSE_S = 4
# Room left in the grace period after that bound: the producer's flush at exit when Kafka is
# slow (up to 5 s, then 2 s for purged reports), the kubelet's own latency.
GRACE_MARGIN_S = 10
# The persister's grace period covers CHAT_SHUTDOWN_MS plus this.
PERSISTER_MARGIN_S = 5
# Kubernetes' probe defaults.
PROBE_PERIOD_S = 10
PROBE_FAILURES = 3


def config_tables():
    """{setting: default or None} from the programs' config tables (the first one wins)."""
    known = {}
    for pattern in CONFIG_SOURCES:
        for path in sorted(glob.glob(os.path.join(REPO, pattern))):
            with open(path, encoding="utf-8") as fh:
                for m in CONFIG_ENTRY.finditer(fh.read()):
                    known.setdefault(m.group(1), m.group(2))
    return known


def haproxy_settings():
    """The CHAT_* variables HAProxy's configs read (${CHAT_X}, defined(CHAT_X)): the HAProxy
    Deployment's environment may set those."""
    names = set()
    paths = [os.path.join(REPO, "deploy/haproxy/haproxy.cfg"),
             os.path.join(REPO, "deploy/k8s/40-haproxy.yaml")]
    for path in paths:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                names.update(re.findall(r"(?:\$\{|defined\()(CHAT_[A-Z0-9_]+)", fh.read()))
    return names


KNOWN_DEFAULTS = config_tables()
KNOWN_SETTINGS = set(KNOWN_DEFAULTS) | haproxy_settings()


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


def effective_env(c, resources):
    """{name: (value, source)} for a container as Kubernetes builds it: envFrom in order (a
    later source wins), then env; a valueFrom entry is (None, "env")."""
    out = {}
    for ref in c.get("envFrom") or []:
        if "configMapRef" in ref:
            cm = resources.get(("ConfigMap", ref["configMapRef"].get("name"))) or {}
            for k, v in (cm.get("data") or {}).items():
                out[k] = (str(v), f"ConfigMap/{ref['configMapRef'].get('name')}")
        if "secretRef" in ref:
            sec = resources.get(("Secret", ref["secretRef"].get("name"))) or {}
            for k in list(sec.get("stringData") or {}) + list(sec.get("data") or {}):
                out[k] = (None, f"Secret/{ref['secretRef'].get('name')}")
    for e in c.get("env") or []:
        out[e.get("name")] = (None if "valueFrom" in e else str(e.get("value", "")), "env")
    return out


def setting_ms(env, name):
    """(ms, where it comes from) of an integer setting, or (None, why)."""
    value, source = env.get(name, (KNOWN_DEFAULTS.get(name), "the program's default"))
    try:
        return int(value), source
    except (TypeError, ValueError):
        return None, f"{name}={value!r} from {source} is not an integer"


def prestop_seconds(c):
    """Seconds the preStop hook pauses: `sleep N` (exec) or the sleep action; 0 without one;
    None when it cannot be told."""
    pre = (c.get("lifecycle") or {}).get("preStop")
    if not pre:
        return 0
    if "sleep" in pre:
        return int(pre["sleep"].get("seconds", 0))
    cmd = ((pre.get("exec") or {}).get("command")) or []
    words = " ".join(str(x) for x in cmd).split()
    for i, w in enumerate(words[:-1]):
        if os.path.basename(w) == "sleep" and re.fullmatch(r"[0-9]+", words[i + 1]):
            return int(words[i + 1])
    return None


def check_gateway(r, where, doc, resources, hpas):
    ps = pod_spec(doc)
    c = (ps.get("containers") or [{}])[0]
    ready = ((c.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    live = ((c.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
    r.check(ready == "/readyz", where, "gateway readiness probe is GET /readyz")
    r.check(live == "/healthz", where, "gateway liveness probe is GET /healthz")
    replicas = doc["spec"].get("replicas")
    hpa = hpas.get(doc["metadata"]["name"])
    if hpa:
        low = (hpa.get("spec") or {}).get("minReplicas", 1)
        r.check(isinstance(low, int) and low >= 2, where,
                f"gateway runs 2+ replicas (HPA {hpa['metadata']['name']} minReplicas {low})")
    else:
        r.check(isinstance(replicas, int) and replicas >= 2, where, "gateway runs 2+ replicas")

    # Stopping: preStop pause, then the drain (at most CHAT_DRAIN_MS, exit within + 4 s).
    env_all = effective_env(c, resources)
    drain_ms, source = setting_ms(env_all, "CHAT_DRAIN_MS")
    r.check(drain_ms is not None and "CHAT_DRAIN_MS" in env_all, where,
            f"gateway sets CHAT_DRAIN_MS explicitly ({drain_ms} ms from {source})")
    pre = prestop_seconds(c)
    r.check(pre is not None, where, f"gateway preStop pause is readable ({pre} s)")
    grace = ps.get("terminationGracePeriodSeconds", 30)
    if drain_ms is not None and pre is not None:
        need = pre + math.ceil(drain_ms / 1000) + DRAIN_CLOSE_S
        r.check(isinstance(grace, int) and grace >= need + GRACE_MARGIN_S, where,
                f"gateway terminationGracePeriodSeconds {grace} >= preStop {pre} + CHAT_DRAIN_MS "
                f"{drain_ms / 1000:g} + {DRAIN_CLOSE_S} = {need} s, + {GRACE_MARGIN_S} s margin")
        # /healthz answers 503 from SIGTERM until exit. The kubelet stops liveness probes of a
        # deleted pod, but a SIGTERM without deletion (node shutdown) leaves them running: the
        # failures needed for a restart must take longer than the drain.
        lp = c.get("livenessProbe") or {}
        period = lp.get("periodSeconds", PROBE_PERIOD_S)
        fails = lp.get("failureThreshold", PROBE_FAILURES)
        window = math.ceil(drain_ms / 1000) + DRAIN_CLOSE_S
        r.check((fails - 1) * period > window, where,
                f"gateway liveness needs {fails} failures {period} s apart "
                f"({(fails - 1) * period} s), longer than a drain ({window} s)")
    env = {e.get("name"): e for e in c.get("env") or []}
    r.check("CHAT_NODE_ID" in env, where, "gateway sets CHAT_NODE_ID (pod name)")
    refs = [list(x.keys())[0] for x in c.get("envFrom") or []]
    r.check("secretRef" in refs, where, "gateway takes the JWT secret from a Secret")


def check_persister(r, where, doc, resources):
    ps = pod_spec(doc)
    c = (ps.get("containers") or [{}])[0]
    shutdown_ms, source = setting_ms(effective_env(c, resources), "CHAT_SHUTDOWN_MS")
    grace = ps.get("terminationGracePeriodSeconds", 30)
    r.check(shutdown_ms is not None and isinstance(grace, int)
            and grace >= math.ceil(shutdown_ms / 1000) + PERSISTER_MARGIN_S, where,
            f"persister terminationGracePeriodSeconds {grace} >= CHAT_SHUTDOWN_MS "
            f"{shutdown_ms} ms ({source}) + {PERSISTER_MARGIN_S} s")


def selects(selector, labels):
    """Whether a LabelSelector with only matchLabels selects these labels (None: it has
    matchExpressions, which this check does not evaluate)."""
    if (selector or {}).get("matchExpressions"):
        return None
    want = (selector or {}).get("matchLabels") or {}
    return bool(want) and all(labels.get(k) == v for k, v in want.items())


def scaled(value, n, round_up):
    """An IntOrString (2 or "25%") against n replicas, rounded as Kubernetes does."""
    if isinstance(value, str) and value.endswith("%"):
        x = int(value[:-1]) * n / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(value)


def haproxy_slots(resources):
    """(slots, fqdn) of the gateway server-template in chat-haproxy's haproxy.cfg."""
    cm = resources.get(("ConfigMap", "chat-haproxy")) or {}
    cfg = (cm.get("data") or {}).get("haproxy.cfg") or ""
    m = re.search(r"^\s*server-template\s+\S+\s+(\d+)(?:-(\d+))?\s+([^\s:]+)", cfg, re.M)
    if not m:
        return None, None
    lo, hi = int(m.group(1)), m.group(2)
    return (int(hi) - lo + 1 if hi else lo), m.group(3)


def check_scaling(r, d, resources, hpas):
    deployments = {n: doc for (k, n), doc in resources.items() if k == "Deployment"}
    slots, fqdn = haproxy_slots(resources)
    # HPAs
    targets = {}
    for (kind, name), doc in resources.items():
        if kind != "HorizontalPodAutoscaler":
            continue
        spec = doc.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        tname = ref.get("name")
        r.check(ref.get("kind") == "Deployment" and ref.get("apiVersion") == "apps/v1"
                and tname in deployments, d,
                f"HPA/{name} targets an apps/v1 Deployment defined here ({tname})")
        targets.setdefault(tname, []).append(name)
        dep = deployments.get(tname)
        if not dep:
            continue
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
        r.check(1 <= low <= high, d, f"HPA/{name} 1 <= minReplicas {low} <= maxReplicas {high}")
        r.check("replicas" not in dep["spec"], d,
                f"Deployment/{tname} leaves `replicas` to HPA/{name} "
                "(kubectl apply would reset it)")
        cpu = [m for m in spec.get("metrics") or [] if m.get("type") == "Resource"
               and (m.get("resource") or {}).get("name") == "cpu"]
        r.check(bool(cpu), d, f"HPA/{name} scales on CPU")
        if any(((m["resource"].get("target") or {}).get("type")) == "Utilization" for m in cpu):
            r.check(all(((c.get("resources") or {}).get("requests") or {}).get("cpu")
                        for c in pod_spec(dep).get("containers") or []), d,
                    f"HPA/{name} uses Utilization: every container of {tname} requests CPU")
        if tname == "chat-gateway":
            ru = (dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}
            surge = scaled(ru.get("maxSurge", "25%"), high, True)
            r.check(slots is not None and high + surge <= slots, d,
                    f"HPA/{name} maxReplicas {high} + maxSurge {surge} <= HAProxy's "
                    f"server-template slots ({slots}, chat-haproxy haproxy.cfg)")
            r.check(fqdn is not None and fqdn.split(".")[0] in
                    [n for (k, n), s in resources.items() if k == "Service"
                     and (s.get("spec") or {}).get("clusterIP") == "None"
                     and selects({"matchLabels": (s.get("spec") or {}).get("selector")},
                                 (dep["spec"]["template"].get("metadata") or {})
                                 .get("labels") or {})], d,
                    f"HAProxy's server-template resolves a headless Service of {tname} ({fqdn})")
    for tname, names in targets.items():
        r.check(len(names) == 1, d, f"Deployment/{tname} has one HPA ({names})")

    # PodDisruptionBudgets: exactly one per Deployment, never blocking a drain.
    pdbs = {n: doc for (k, n), doc in resources.items() if k == "PodDisruptionBudget"}
    for name, dep in deployments.items():
        labels = (dep["spec"]["template"].get("metadata") or {}).get("labels") or {}
        mine = [p for p, doc in pdbs.items()
                if selects((doc.get("spec") or {}).get("selector"), labels)]
        r.check(len(mine) == 1, d, f"Deployment/{name} has exactly one PodDisruptionBudget "
                                   f"(found {mine}; with two, evicting its pods fails)")
        hpa = hpas.get(name)
        n = ((hpa.get("spec") or {}).get("minReplicas", 1) if hpa
             else dep["spec"].get("replicas", 1))
        for p in mine:
            spec = pdbs[p].get("spec") or {}
            if "maxUnavailable" in spec:
                allowed = scaled(spec["maxUnavailable"], n, True)
            else:
                allowed = n - scaled(spec.get("minAvailable", 0), n, True)
            r.check(allowed >= 1, d, f"PodDisruptionBudget/{p} lets one of {n} {name} pods be "
                                     f"evicted (allows {allowed}), so node drains go on")
    for p, doc in pdbs.items():
        sel = (doc.get("spec") or {}).get("selector")
        hit = [n for n, dep in deployments.items()
               if selects(sel, (dep["spec"]["template"].get("metadata") or {}).get("labels")
                          or {})]
        r.check(bool(hit), d, f"PodDisruptionBudget/{p} selects a Deployment's pods "
                              f"(matchLabels only) {hit}")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "deploy/k8s"
    r = Report()
    files = sorted(f for f in os.listdir(d) if f.endswith((".yaml", ".yml")))
    resources = {}
    where_of = {}
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
            where_of[key] = path
    r.check(len(KNOWN_SETTINGS) > 20 and "CHAT_DRAIN_MS" in KNOWN_SETTINGS, d,
            f"read {len(KNOWN_SETTINGS)} settings from the programs' config tables and "
            "HAProxy's configs")
    hpas = {}
    for (kind, name), doc in resources.items():
        if kind == "HorizontalPodAutoscaler":
            hpas[((doc.get("spec") or {}).get("scaleTargetRef") or {}).get("name")] = doc
    for key, doc in resources.items():
        path = where_of[key]
        if doc.get("kind") in WORKLOAD_KINDS:
            check_workload(r, path, doc)
        if doc.get("kind") == "Deployment" and key[1] == "chat-gateway":
            check_gateway(r, path, doc, resources, hpas)
        if doc.get("kind") == "Deployment" and key[1] == "chat-persister":
            check_persister(r, path, doc, resources)
        if doc.get("kind") == "ConfigMap" and key[1] == "chat-config":
            bad = [k for k in doc.get("data") or {} if k not in KNOWN_SETTINGS]
            r.check(not bad, path, f"chat-config holds only known settings {bad or ''}")
    check_scaling(r, d, resources, hpas)

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
