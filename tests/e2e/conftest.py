"""Session fixture for the end-to-end tests: starts a throwaway real cluster (Kafka, FerretDB on
PostgreSQL, two ASan-built gateways, the persister, HAProxy) with scripts/cluster.sh on the test
ports, and always stops it again.

Environment:
  CHAT_E2E_BUILD_DIR   build tree with the binaries (default <repo>/build-asan)
  CHAT_E2E_DATA_DIR    cluster data/logs directory (default: a new /tmp/chat-e2e-* directory,
                       removed after a fully green run)
  CHAT_E2E_KEEP_DATA=1 keep the data directory even after a green run
  CHAT_E2E_PORT_OFFSET=N  add N to every test port (so that two runs can share a machine);
                       a hand-started extra gateway listens on the last gateway port + 1
  CHAT_E2E_REUSE=1     use an already running cluster: no up/down. Start it with the same
                       settings, e.g.
                         CHAT_PUBLIC_PORT=18080 CHAT_GATEWAY_PORTS=18081,18082 \
                         CHAT_STATS_PORT=18404 CHAT_KAFKA_PORT=19092 CHAT_MONGO_PORT=18017 \
                         CHAT_PG_PORT=15433 CHAT_TLS_PORT=18443 \
                         CHAT_PERSISTER_METRICS_PORT=18464 \
                         CHAT_RATE=200 CHAT_RATE_BURST=400 CHAT_AUTH_TIMEOUT=2 \
                         CHAT_JWT_SECRET=e2e-secret-0123456789abcdef CHAT_DATA_DIR=/tmp/e2e \
                         CHAT_BUILD_DIR=build-asan scripts/cluster.sh up
                       and run the tests with the same CHAT_DATA_DIR (or CHAT_E2E_DATA_DIR)
                       so that logs can be checked; ports, secret and rate are read from the
                       same CHAT_* variables when set.

At the end of the session every gateway/persister log is checked for AddressSanitizer and
UBSan reports ("runtime error:"), and every log for the tokens the run used and the JWT secret;
one fails the run. When anything failed, the tail of every
cluster log is printed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_e2e import (REPO, USED_TOKENS, Cluster, env_flag, find_secrets,  # noqa: E402
                      http_get, secret_needles)

TEST_SETTINGS = {
    "CHAT_PUBLIC_PORT": "18080",
    "CHAT_GATEWAY_PORTS": "18081,18082",
    "CHAT_STATS_PORT": "18404",
    "CHAT_TLS_PORT": "18443",
    "CHAT_KAFKA_PORT": "19092",
    "CHAT_MONGO_PORT": "18017",
    "CHAT_PG_PORT": "15433",
    "CHAT_PERSISTER_METRICS_PORT": "18464",
    "CHAT_JWT_SECRET": "e2e-secret-0123456789abcdef",
    # moderate rate: the rate test can exceed it, the bulk tests pace themselves below it
    "CHAT_RATE": "200",
    "CHAT_RATE_BURST": "400",
    # the auth-timeout test waits this long
    "CHAT_AUTH_TIMEOUT": "2",
    "CHAT_DEV_TOKENS": "1",
}

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:")
LEAK_PATTERN = "ERROR: LeakSanitizer"
SANITIZED_LOGS = ("gateway", "persister")  # log name prefixes checked for sanitizer reports


class _State:
    def __init__(self):
        self.cluster: Cluster | None = None
        self.needs_down = False
        self.exitstatus = 0
        self.created_data_dir = False
        self.notes: list[str] = []


STATE = pytest.StashKey[_State]()


def pytest_configure(config):
    config.stash[STATE] = _State()
    config.addinivalue_line(
        "markers",
        "late(n): run after the unmarked tests, in ascending n (tests that disturb the cluster "
        "or fill MongoDB with big documents, which slows FerretDB's room queries)")


def pytest_collection_modifyitems(session, config, items):
    def order(item):
        m = item.get_closest_marker("late")
        return (1, m.args[0] if m and m.args else 0) if m else (0, 0)

    items.sort(key=order)  # stable: files and tests keep their order otherwise


def _log(msg: str) -> None:
    print(f"[e2e] {msg}", file=sys.__stderr__, flush=True)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _read_cluster_env(data_dir: Path) -> dict:
    out = {}
    p = data_dir / "cluster.env"
    if p.is_file():
        for line in p.read_text(errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip().removeprefix("export ").strip()] = v.strip().strip("'\"")
    return out


def _make_cluster(reuse: bool) -> tuple[Cluster, bool]:
    created = False
    settings = dict(TEST_SETTINGS)
    if reuse:
        data = os.environ.get("CHAT_E2E_DATA_DIR") or os.environ.get("CHAT_DATA_DIR") or str(REPO / ".data")
        data_dir = Path(data).resolve()
        for k in settings:
            if os.environ.get(k):
                settings[k] = os.environ[k]
        settings.update({k: v for k, v in _read_cluster_env(data_dir).items() if k in settings})
    else:
        offset = int(os.environ.get("CHAT_E2E_PORT_OFFSET") or 0)
        if offset:
            for k in ("CHAT_PUBLIC_PORT", "CHAT_STATS_PORT", "CHAT_KAFKA_PORT", "CHAT_MONGO_PORT",
                      "CHAT_PG_PORT", "CHAT_TLS_PORT", "CHAT_PERSISTER_METRICS_PORT"):
                settings[k] = str(int(settings[k]) + offset)
            settings["CHAT_GATEWAY_PORTS"] = ",".join(
                str(int(p) + offset) for p in settings["CHAT_GATEWAY_PORTS"].split(","))
        if os.environ.get("CHAT_E2E_DATA_DIR"):
            data_dir = Path(os.environ["CHAT_E2E_DATA_DIR"]).resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
        else:
            data_dir = Path(tempfile.mkdtemp(prefix="chat-e2e-"))
            created = True
    build_dir = Path(os.environ.get("CHAT_E2E_BUILD_DIR") or (REPO / "build-asan")).resolve()
    web_root = REPO / "gateway" / "web"

    env = dict(os.environ)
    env.update(settings)
    env["CHAT_DATA_DIR"] = str(data_dir)
    env["CHAT_BUILD_DIR"] = str(build_dir)
    if web_root.is_dir():
        env.setdefault("CHAT_WEB_ROOT", str(web_root))
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    env.setdefault("MONGOC_DISABLE_SHM", "1")  # what scripts/cluster.sh sets, for spawn_gateway

    c = Cluster(
        data_dir=data_dir,
        build_dir=build_dir,
        env=env,
        public_port=int(settings["CHAT_PUBLIC_PORT"]),
        gateway_ports=[int(p) for p in settings["CHAT_GATEWAY_PORTS"].split(",") if p.strip()],
        stats_port=int(settings["CHAT_STATS_PORT"]),
        tls_port=int(settings["CHAT_TLS_PORT"]),
        kafka_port=int(settings["CHAT_KAFKA_PORT"]),
        mongo_port=int(settings["CHAT_MONGO_PORT"]),
        pg_port=int(settings["CHAT_PG_PORT"]),
        persister_metrics_port=int(settings["CHAT_PERSISTER_METRICS_PORT"]),
        secret=settings["CHAT_JWT_SECRET"],
        rate=float(settings["CHAT_RATE"]),
        burst=int(settings["CHAT_RATE_BURST"]),
        auth_timeout=float(settings["CHAT_AUTH_TIMEOUT"]),
        owned=not reuse,
    )
    return c, created


def _wait_ready(c: Cluster, timeout: float = 120) -> None:
    """Every gateway ready (Kafka and MongoDB reachable) and HAProxy answering."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            ok = True
            for port in c.gateway_ports:
                r = http_get(port, "/readyz", timeout=3)
                if r.status != 200:
                    ok, last = False, f"gateway :{port} /readyz {r.status} {r.body[:200]!r}"
                    break
            if ok:
                r = http_get(c.public_port, "/healthz", timeout=3)
                if r.status == 200:
                    return
                last = f"haproxy :{c.public_port} /healthz {r.status}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.5)
    raise RuntimeError(f"cluster not ready within {timeout}s: {last}")


def _pids_of_ours(c: Cluster) -> list[int]:
    """Processes still alive that were started with our CHAT_DATA_DIR in their environment."""
    marker = f"CHAT_DATA_DIR={c.data_dir}".encode()
    found = []
    for pidfile in (c.data_dir / "run").glob("*.pid") if (c.data_dir / "run").is_dir() else []:
        try:
            pid = int(pidfile.read_text().strip())
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (ValueError, OSError):
            continue
        if marker in environ.split(b"\0"):
            found.append(pid)
    return found


def _down(c: Cluster, state: _State) -> None:
    if not state.needs_down:
        return
    state.needs_down = False
    try:
        c.script("down", timeout=180)
    except AssertionError as e:
        state.notes.append(f"scripts/cluster.sh down failed: {e}")
    left = _pids_of_ours(c)
    if left:
        state.notes.append(f"processes still running after down: {left}; sent SIGKILL")
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _scan_sanitizers(c: Cluster, offsets: dict) -> tuple[list[str], list[str]]:
    """Sanitizer reports in gateway/persister logs written since offsets were taken."""
    errors, leaks = [], []
    if not c.log_dir.is_dir():
        return errors, leaks
    for log in sorted(c.log_dir.glob("*.log")):
        if not log.name.startswith(SANITIZED_LOGS):
            continue
        data = log.read_bytes()
        start = offsets.get(log.name, 0)
        if start > len(data):  # truncated by a restart
            start = 0
        lines = data[start:].decode("utf-8", errors="replace").splitlines()
        for i, line in enumerate(lines):
            if any(p in line for p in SANITIZER_PATTERNS):
                errors.append(f"{log.name}: " + "\n    ".join(lines[i:i + 12]))
            elif LEAK_PATTERN in line:
                leaks.append(f"{log.name}: " + "\n    ".join(lines[i:i + 8]))
    return errors, leaks


def _scan_secrets(c: Cluster) -> list[str]:
    """Tokens of this run (or the JWT secret) in any cluster log (test_zz_secrets.py checks the
    same before the end with more care; this also covers what shutdown wrote)."""
    if not USED_TOKENS or not c.log_dir.is_dir():
        return []
    needles = secret_needles(c.secret)
    return [f"{log.name}: {n[:24]}..." for log in sorted(c.log_dir.glob("*.log"))
            for n in find_secrets(log.read_bytes(), needles)]


def _log_offsets(c: Cluster) -> dict:
    if not c.log_dir.is_dir():
        return {}
    return {p.name: p.stat().st_size for p in c.log_dir.glob("*.log")}


@pytest.fixture(scope="session")
def cluster(request):
    state = request.config.stash[STATE]
    reuse = env_flag("CHAT_E2E_REUSE")
    c, created = _make_cluster(reuse)
    state.cluster = c
    state.created_data_dir = created

    if reuse:
        _log(f"reusing the running cluster (data {c.data_dir}, public port {c.public_port})")
        offsets = _log_offsets(c)
        _wait_ready(c, timeout=30)
        yield c
        c.close()
    else:
        for name in ("gateway/chat-gateway", "persister/chat-persister", "tools/chat-admin"):
            if not (c.build_dir / name).is_file():
                pytest.fail(f"{c.build_dir / name} is missing: build it first (cmake -S . -B "
                            f"build-asan -G Ninja -DCHAT_SANITIZE=ON && cmake --build build-asan) "
                            f"or set CHAT_E2E_BUILD_DIR")
        busy = [p for p in (c.public_port, c.tls_port, *c.gateway_ports, c.stats_port,
                            c.kafka_port, c.kafka_port + 1, c.mongo_port, c.pg_port,
                            c.persister_metrics_port) if _port_open(p)]
        if busy:
            pytest.fail(f"test ports already in use: {busy}. Another test cluster is running: "
                        f"stop it (CHAT_DATA_DIR=<its dir> scripts/cluster.sh down) or run with "
                        f"CHAT_E2E_REUSE=1")

        def on_sigterm(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        old_term = signal.signal(signal.SIGTERM, on_sigterm)
        atexit.register(_down, c, state)
        offsets: dict = {}
        state.needs_down = True
        try:
            _log(f"starting the cluster: data {c.data_dir}, build {c.build_dir}")
            t0 = time.monotonic()
            c.script("up", timeout=600)
            _wait_ready(c)
            _log(f"cluster up in {time.monotonic() - t0:.1f}s")
            yield c
        finally:
            c.close()
            _log("stopping the cluster")
            _down(c, state)
            signal.signal(signal.SIGTERM, old_term)

    errors, leaks = _scan_sanitizers(c, offsets)
    state.notes.extend(f"LeakSanitizer report (not failing the run):\n    {x}" for x in leaks)
    if errors:
        pytest.fail("sanitizer reports in the cluster logs:\n" + "\n".join(errors), pytrace=False)
    leaked = _scan_secrets(c)
    if leaked:
        pytest.fail("tokens or the JWT secret in the cluster logs:\n" + "\n".join(leaked),
                    pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[STATE].exitstatus = int(exitstatus)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash[STATE]
    c = state.cluster
    tr = terminalreporter
    for note in state.notes:
        tr.write_line(f"[e2e] {note}")
    failed = int(exitstatus) != 0 or tr.stats.get("failed") or tr.stats.get("error")
    if c is None or not failed:
        return
    tr.section("cluster logs (tails)")
    if c.log_dir.is_dir():
        for log in sorted(c.log_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            tr.write_line(f"----- {log} (last {min(40, len(lines))} of {len(lines)} lines)")
            for line in lines[-40:]:
                tr.write_line(line)
    else:
        tr.write_line(f"no log directory {c.log_dir}")
    tr.write_line(f"[e2e] cluster data kept in {c.data_dir}")


def pytest_unconfigure(config):
    state = config.stash.get(STATE, None)
    if state is None or state.cluster is None:
        return
    c = state.cluster
    if state.needs_down:  # e.g. interrupted before the fixture's finally ran
        _down(c, state)
    if state.created_data_dir and state.exitstatus == 0 and not env_flag("CHAT_E2E_KEEP_DATA"):
        shutil.rmtree(c.data_dir, ignore_errors=True)
