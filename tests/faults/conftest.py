"""Session fixture for the fault tests: a throwaway cluster like the end-to-end suite's (two
ASan-built gateways behind HAProxy, the persister, FerretDB on PostgreSQL) but with three Kafka
brokers (CHAT_KAFKA_NODES=3: a three-voter KRaft quorum, the topic replicated 3 times with
min.insync.replicas 2), started with scripts/cluster.sh and always stopped again.

Ports: every port of the end-to-end suite's test settings plus 30, plus CHAT_E2E_PORT_OFFSET:
HAProxy 18110 (TLS 18473), gateways 18111 and 18112, stats 18434, Kafka 19122, 19124 and 19126
(controllers on the next ports), FerretDB 18047, PostgreSQL 15463, the persister's metrics
18494. None ends in the same two digits as an end-to-end port, so a fault cluster never takes a
port of an end-to-end cluster, whatever the two offsets (multiples of 100).

Environment: CHAT_E2E_BUILD_DIR, CHAT_E2E_KEEP_DATA and CHAT_E2E_PORT_OFFSET as in
tests/e2e/conftest.py; CHAT_FAULTS_DATA_DIR, the data directory (default: a new
/tmp/chat-faults-* directory, removed after a fully green run). The gateway and persister logs
are checked for sanitizer reports at the end, as in the end-to-end suite.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

from chat_e2e import REPO, Cluster  # noqa: E402

# The end-to-end suite's cluster helpers (readiness wait, down, sanitizer scan), not its hooks.
_spec = importlib.util.spec_from_file_location("e2e_conftest", E2E / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

PORT_SHIFT = 30  # no fault port ends in the same two digits as an end-to-end port
KAFKA_NODES = 3
SETTINGS = dict(e2e.TEST_SETTINGS)
SETTINGS.update({
    "CHAT_KAFKA_NODES": str(KAFKA_NODES),
    # the streams pace themselves far below this; retries after an outage come in bursts
    "CHAT_RATE": "500",
    "CHAT_RATE_BURST": "1000",
})


class _State(e2e._State):
    """The end-to-end suite's run state, plus when the module started."""

    def __init__(self):
        super().__init__()
        self.t0 = time.monotonic()


# the end-to-end suite's stash key, so that its end-of-run hooks below serve this state too
STATE = e2e.STATE


def pytest_configure(config):
    config.stash[STATE] = _State()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _make_cluster() -> tuple[Cluster, bool, list[int]]:
    shift = PORT_SHIFT + int(os.environ.get("CHAT_E2E_PORT_OFFSET") or 0)
    settings = dict(SETTINGS)
    for k in [k for k in settings if k.endswith("_PORT")]:
        settings[k] = str(int(settings[k]) + shift)
    settings["CHAT_GATEWAY_PORTS"] = ",".join(
        str(int(p) + shift) for p in settings["CHAT_GATEWAY_PORTS"].split(","))
    created = False
    if os.environ.get("CHAT_FAULTS_DATA_DIR"):
        data_dir = Path(os.environ["CHAT_FAULTS_DATA_DIR"]).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="chat-faults-"))
        created = True
    build_dir = Path(os.environ.get("CHAT_E2E_BUILD_DIR") or (REPO / "build-asan")).resolve()
    env = dict(os.environ)
    env.update(settings)
    env["CHAT_DATA_DIR"] = str(data_dir)
    env["CHAT_BUILD_DIR"] = str(build_dir)
    env.setdefault("CHAT_WEB_ROOT", str(REPO / "gateway" / "web"))
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    kafka = int(settings["CHAT_KAFKA_PORT"])
    c = Cluster(
        data_dir=data_dir, build_dir=build_dir, env=env,
        public_port=int(settings["CHAT_PUBLIC_PORT"]),
        gateway_ports=[int(p) for p in settings["CHAT_GATEWAY_PORTS"].split(",")],
        stats_port=int(settings["CHAT_STATS_PORT"]),
        tls_port=int(settings.get("CHAT_TLS_PORT") or 0),
        persister_metrics_port=int(settings.get("CHAT_PERSISTER_METRICS_PORT") or 0),
        kafka_port=kafka,
        mongo_port=int(settings["CHAT_MONGO_PORT"]),
        pg_port=int(settings["CHAT_PG_PORT"]),
        secret=settings["CHAT_JWT_SECRET"],
        rate=float(settings["CHAT_RATE"]),
        burst=int(settings["CHAT_RATE_BURST"]),
        auth_timeout=float(settings["CHAT_AUTH_TIMEOUT"]),
        owned=True,
    )
    ports = [c.public_port, *c.gateway_ports, c.stats_port, c.mongo_port, c.pg_port,
             *(p for p in (c.tls_port, c.persister_metrics_port) if p),
             *range(kafka, kafka + 2 * KAFKA_NODES)]
    return c, created, ports


@pytest.fixture(scope="session")
def cluster(request):
    state = request.config.stash[STATE]
    c, created, ports = _make_cluster()
    state.cluster = c
    state.created_data_dir = created
    for name in ("gateway/chat-gateway", "persister/chat-persister", "tools/chat-admin"):
        if not (c.build_dir / name).is_file():
            pytest.fail(f"{c.build_dir / name} is missing: build it first (make build-asan) or "
                        f"set CHAT_E2E_BUILD_DIR")
    busy = [p for p in ports if _port_open(p)]
    if busy:
        pytest.fail(f"fault test ports already in use: {busy}. Another fault test cluster is "
                    f"running: stop it (CHAT_DATA_DIR=<its dir> scripts/cluster.sh down)")

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old_term = signal.signal(signal.SIGTERM, on_sigterm)
    atexit.register(e2e._down, c, state)
    state.needs_down = True
    try:
        e2e._log(f"starting the three-broker cluster: data {c.data_dir}, build {c.build_dir}")
        t0 = time.monotonic()
        c.script("up", timeout=600)
        e2e._wait_ready(c)
        e2e._log(f"cluster up in {time.monotonic() - t0:.1f}s")
        yield c
    finally:
        c.close()
        e2e._log("stopping the cluster")
        t0 = time.monotonic()
        e2e._down(c, state)
        e2e._log(f"cluster down in {time.monotonic() - t0:.1f}s")
        signal.signal(signal.SIGTERM, old_term)
    errors, leaks = e2e._scan_sanitizers(c, {})
    state.notes.extend(f"LeakSanitizer report (not failing the run):\n    {x}" for x in leaks)
    if errors:
        pytest.fail("sanitizer reports in the cluster logs:\n" + "\n".join(errors), pytrace=False)


pytest_sessionfinish = e2e.pytest_sessionfinish  # records the exit status


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash[STATE]
    tr = terminalreporter
    for note in state.notes:
        tr.write_line(f"[faults] {note}")
    tr.write_line(f"[faults] module wall time {time.monotonic() - state.t0:.0f}s")
    c = state.cluster
    failed = int(exitstatus) != 0 or tr.stats.get("failed") or tr.stats.get("error")
    if c is None or not failed:
        return
    tr.section("cluster logs (tails)")
    for log in sorted(c.log_dir.glob("*.log")) if c.log_dir.is_dir() else []:
        lines = log.read_text(errors="replace").splitlines()
        tr.write_line(f"----- {log} (last {min(40, len(lines))} of {len(lines)} lines)")
        for line in lines[-40:]:
            tr.write_line(line)
    tr.write_line(f"[faults] cluster data kept in {c.data_dir}")

# down if the fixture's finally did not run; the data directory removed after a green run
pytest_unconfigure = e2e.pytest_unconfigure
