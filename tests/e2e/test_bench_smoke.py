"""A short run of the load generator behind `make bench` (tests/bench/chat_loadgen.c), so that
it keeps working: 40 connections in one room across both gateways, 4 senders at 50 msg/s for 2
seconds. Every message sent must reach every member once; the figures themselves are not
judged here (make bench prints them)."""
from __future__ import annotations

import json
import subprocess

from chat_e2e import unique


def test_load_generator_smoke(cluster, tmp_path):
    binary = cluster.build_dir / "tests" / "chat-loadgen"
    assert binary.is_file(), f"{binary} is missing"
    out = tmp_path / "smoke.json"
    name = unique("smoke")
    r = subprocess.run(
        [str(binary), "--secret", cluster.secret, "--port", str(cluster.gateway_ports[0]),
         "--port2", str(cluster.gateway_ports[1]), "--conns", "40", "--senders", "4",
         "--rate", "50", "--seconds", "2", "--name", name, "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    print(r.stdout)
    assert r.returncode == 0, f"chat-loadgen exited {r.returncode}: {r.stdout}\n{r.stderr}"
    fig = json.loads(out.read_text())
    assert fig["joined"] == 40 and fig["failed"] == 0 and fig["errors"] == 0, fig
    assert fig["sent"] >= 90, fig
    assert fig["delivered"] == fig["sent"] * 40, f"not every message reached every member: {fig}"
    assert 0 < fig["p50_ms"] <= fig["p99_ms"], fig


def test_load_generator_idle_smoke(cluster, tmp_path):
    """The idle scenarios' mode (--idle with --pid): half join, a pause, the rest; both RSS
    figures are reported (their values are make bench's to print, not judged here)."""
    binary = cluster.build_dir / "tests" / "chat-loadgen"
    pid = int((cluster.data_dir / "run" / "gateway-1.pid").read_text().strip())
    out = tmp_path / "idle.json"
    r = subprocess.run(
        [str(binary), "--secret", cluster.secret, "--port", str(cluster.gateway_ports[0]),
         "--conns", "40", "--rooms", "4", "--senders", "0", "--idle", "1", "--join-only",
         "--pid", str(pid), "--name", unique("idle"), "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    print(r.stdout)
    assert r.returncode == 0, f"chat-loadgen exited {r.returncode}: {r.stdout}\n{r.stderr}"
    assert "bytes per idle connection" in r.stdout and "the second 20 connections" in r.stdout, \
        r.stdout
    fig = json.loads(out.read_text())
    assert fig["joined"] == 40 and fig["failed"] == 0 and fig["errors"] == 0, fig
    assert "idle_bytes_per_conn" in fig and "idle_bytes_second_half" in fig, fig


def test_send_floor_smoke(cluster, tmp_path):
    """The kernel-floor program of `make bench` (tests/bench/send_floor.c) on a few connections:
    it runs, every figure is a positive time, and more frames per send() cost less per frame."""
    binary = cluster.build_dir / "tests" / "chat-send-floor"
    assert binary.is_file(), f"{binary} is missing"
    out = tmp_path / "floor.json"
    r = subprocess.run([str(binary), "--conns", "20", "--frames", "20000", "--per-send", "1,16",
                        "--json", str(out)], capture_output=True, text=True, timeout=120)
    print(r.stdout)
    assert r.returncode == 0, f"chat-send-floor exited {r.returncode}: {r.stdout}\n{r.stderr}"
    fig = json.loads(out.read_text())
    assert fig["per_send"] == [1, 16], fig
    one, sixteen = fig["us_per_frame"]
    assert one > 0 and sixteen > 0, fig
    assert sixteen < one, f"16 frames per send() did not cost less per frame than 1: {fig}"
