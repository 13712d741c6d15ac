"""/metrics on both gateways and on the persister, parsed with prometheus_client's reference
text-format parser: every family the docs list is there with its type, names follow the
conventions, and the counters, histograms and gauges move with real traffic (sends through one
gateway, deliveries on both, an error reply, server and client closes, stored batches and
committed offsets)."""

from __future__ import annotations

import asyncio
import http.client
import re
import time

from chat_e2e import (connect_on, http_get, run, sample, scrape, unique, wait_persisted)

GATEWAY_FAMILIES = {
    # family name as the parser reports it (counters without _total): type
    "chat_gateway_sessions": "gauge",
    "chat_gateway_authenticated_sessions": "gauge",
    "chat_gateway_connections": "counter",
    "chat_gateway_frames_received": "counter",
    "chat_gateway_frames_sent": "counter",
    "chat_gateway_deliveries": "counter",
    "chat_gateway_sent_bytes": "counter",
    "chat_gateway_writes": "counter",
    "chat_gateway_messages_produced": "counter",
    "chat_gateway_messages_acked": "counter",
    "chat_gateway_produce_failures": "counter",
    "chat_gateway_records_read": "counter",
    "chat_gateway_slow_reader_closes": "counter",
    "chat_gateway_joins": "counter",
    "chat_gateway_joins_from_log": "counter",
    "chat_gateway_store_reads": "counter",
    "chat_gateway_store_read_waiters": "counter",
    "chat_gateway_resumes": "counter",
    "chat_gateway_resumes_recovered": "counter",
    "chat_gateway_retries_deduplicated": "counter",
    "chat_gateway_inexact_store_reads": "counter",
    "chat_gateway_room_log_bytes": "gauge",
    "chat_gateway_room_log_entries": "gauge",
    "chat_gateway_room_log_evicted": "counter",
    "chat_gateway_rooms": "gauge",
    "chat_gateway_store_queued": "gauge",
    "chat_gateway_frames_refused": "counter",
    "chat_gateway_closes": "counter",
    "chat_gateway_peer_closes": "counter",
    "chat_gateway_upgrades_refused": "counter",
    "chat_gateway_ack_latency_seconds": "histogram",
    "chat_gateway_produce_latency_seconds": "histogram",
    "chat_gateway_store_read_latency_seconds": "histogram",
    "chat_gateway_consumer_lag_records": "gauge",
}

PERSISTER_FAMILIES = {
    "chat_persister_messages_stored": "counter",
    "chat_persister_duplicates": "counter",
    "chat_persister_records_skipped": "counter",
    "chat_persister_batches": "counter",
    "chat_persister_store_retries": "counter",
    "chat_persister_commit_failures": "counter",
    "chat_persister_assigned_partitions": "gauge",
    "chat_persister_consumer_lag_total_records": "gauge",
    "chat_persister_batch_size_messages": "histogram",
    "chat_persister_insert_latency_seconds": "histogram",
    "chat_persister_committed_offset": "gauge",
    "chat_persister_consumer_lag_records": "gauge",
}

NAME_RE = re.compile(r"^chat_(gateway|persister)_[a-z0-9_]+$")


def check_families(fams: dict, want: dict, where: str) -> None:
    missing = sorted(set(want) - set(fams))
    assert not missing, f"{where}: families missing from /metrics: {missing}"
    for name, f in fams.items():
        assert NAME_RE.match(name), f"{where}: {name} breaks the naming convention"
        assert f.documentation, f"{where}: {name} has no HELP"
        if name in want:
            assert f.type == want[name], f"{where}: {name} is a {f.type}, not a {want[name]}"
        if f.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in f.samples), name
        if f.type == "histogram":
            buckets = [s for s in f.samples if s.name.endswith("_bucket")]
            assert buckets and buckets[-1].labels["le"] == "+Inf", name
            vals = [s.value for s in buckets]
            assert vals == sorted(vals), f"{where}: {name} buckets are not cumulative: {vals}"
            assert sample(fams, name + "_count") == vals[-1], name


def test_every_metrics_page_parses(cluster):
    for port in cluster.gateway_ports:
        check_families(scrape(port), GATEWAY_FAMILIES, f"gateway :{port}")
    assert cluster.persister_metrics_port, "the cluster has no persister metrics port"
    fams = scrape(cluster.persister_metrics_port)
    check_families(fams, PERSISTER_FAMILIES, "persister")
    deadline = time.monotonic() + 30  # the group's first assignment may still be under way
    while sample(fams, "chat_persister_assigned_partitions") < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        fams = scrape(cluster.persister_metrics_port)
    assert sample(fams, "chat_persister_assigned_partitions") >= 1
    # the persister's listener: other paths and methods refused, no crash
    assert http_get(cluster.persister_metrics_port, "/nope").status == 404


def _upgrade_status(port: int, authorization: str) -> int:
    """The status of a WebSocket upgrade of GET /ws with that Authorization header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/ws", headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Authorization": authorization})
        return conn.getresponse().status
    finally:
        conn.close()


def test_counters_move_with_traffic(cluster):
    room = unique("metrics")
    p1, p2 = cluster.gateway_ports[0], cluster.gateway_ports[1]
    n = 5
    before1, before2 = scrape(p1), scrape(p2)
    pbefore = scrape(cluster.persister_metrics_port)
    ids = []

    async def main(net):
        a = await connect_on(net, "gw-1", unique("alice"))
        b = await connect_on(net, "gw-2", unique("bob"))
        during = await asyncio.to_thread(scrape, p1)
        assert sample(during, "chat_gateway_authenticated_sessions") >= 1
        for c in (a, b):
            await c.join(room)
        for i in range(n):
            await a.say(room, f"metered {i}", f"m{i}")
        await a.wait_acks([f"m{i}" for i in range(n)])
        for c in (a, b):
            await c.wait_messages(room, n)
        ids.extend(m["id"] for m in b.by_room[room])
        # an error reply: sending to a room not joined
        await a.send({"type": "send", "room": unique("elsewhere"), "text": "x", "cid": "nj"})
        await a.expect_error("not_joined", cid="nj")
        # a server close: the first frame of an unauthenticated session must be auth (4001)
        raw = await net.raw(None, None, url=cluster.gateway_ws_url(0), name="anon")
        await raw.send({"type": "ping"})
        code, _ = await raw.wait_closed()
        assert code == 4001, code
        # a client close with 1000
        await b.close()
        # an upgrade with a bad token: 401 before the upgrade
        status = await asyncio.to_thread(_upgrade_status, p1, "Bearer not-a-token")
        assert status == 401, status

    run(main, cluster, timeout=60)
    wait_persisted(cluster, room, n, timeout=60)
    time.sleep(0.5)
    after1, after2 = scrape(p1), scrape(p2)

    def delta(after, before, name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta(after1, before1, "chat_gateway_messages_produced_total") >= n
    assert delta(after1, before1, "chat_gateway_messages_acked_total") >= n
    assert delta(after1, before1, "chat_gateway_ack_latency_seconds_count") >= n
    assert delta(after1, before1, "chat_gateway_produce_latency_seconds_count") >= n
    assert delta(after1, before1, "chat_gateway_ack_latency_seconds_sum") > 0
    assert delta(after1, before1, "chat_gateway_connections_total") >= 2
    assert delta(after1, before1, "chat_gateway_joins_total") >= 1
    for after, before, where in ((after1, before1, "gw-1"), (after2, before2, "gw-2")):
        assert delta(after, before, "chat_gateway_deliveries_total") >= n, where
        assert delta(after, before, "chat_gateway_records_read_total") >= n, where
        assert delta(after, before, "chat_gateway_sent_bytes_total") > n * 40, where
        lags = [s for s in after["chat_gateway_consumer_lag_records"].samples]
        assert len(lags) >= 1 and all(s.value >= 0 for s in lags), where
    assert delta(after1, before1, "chat_gateway_frames_refused_total", reason="not_joined") >= 1
    assert delta(after1, before1, "chat_gateway_closes_total", code="4001") >= 1
    assert delta(after2, before2, "chat_gateway_peer_closes_total", code="1000") >= 1
    assert delta(after1, before1, "chat_gateway_upgrades_refused_total", reason="unauthorized") >= 1
    # the store histogram counts the store reads that ran
    for after in (after1, after2):
        assert (sample(after, "chat_gateway_store_read_latency_seconds_count")
                <= sample(after, "chat_gateway_store_reads_total"))

    # the persister stored and committed them
    part, off = ids[-1].split("-")
    deadline = time.monotonic() + 20
    while True:
        pafter = scrape(cluster.persister_metrics_port)
        committed = sample(pafter, "chat_persister_committed_offset", partition=str(int(part)))
        if committed >= int(off) + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert committed >= int(off) + 1, f"committed {committed} for partition {part}, want > {off}"
    assert delta(pafter, pbefore, "chat_persister_messages_stored_total") >= n
    assert delta(pafter, pbefore, "chat_persister_batches_total") >= 1
    assert delta(pafter, pbefore, "chat_persister_batch_size_messages_count") >= 1
    assert delta(pafter, pbefore, "chat_persister_batch_size_messages_sum") >= n
    assert delta(pafter, pbefore, "chat_persister_insert_latency_seconds_count") >= 1
    assert sample(pafter, "chat_persister_consumer_lag_total_records") >= 0
