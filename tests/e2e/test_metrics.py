"""The supervisor's HTTP endpoint against a live exchange: /metrics counts what clients did,
/healthz answers from the processes' state, ``ringex status`` prints the same numbers.
"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ringex.client import ClientError, Reject, connect
from tests.e2e.live_fixtures import funded, run
from tests.e2e.procs import descendants

TIMEOUT_S = 30.0


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def samples(ex) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    status, body = fetch(ex.http_url + "metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(ex, name: str, **labels) -> float:
    return samples(ex).get((name, tuple(sorted(labels.items()))), 0.0)


def wait_value(ex, name: str, at_least: float, **labels) -> float:
    """Poll /metrics until ``name{labels}`` reaches ``at_least`` (the writer and the
    gateways' gauges lag the engine a little)."""
    deadline = time.monotonic() + TIMEOUT_S
    while (v := value(ex, name, **labels)) < at_least:
        assert time.monotonic() < deadline, f"{name}{labels} stayed at {v} < {at_least}"
        time.sleep(0.05)
    return v


def test_metrics_count_orders_rejects_and_acks(exchange):
    before_acks = value(exchange, "ringex_events_total", kind="ack")
    before_rejects = value(exchange, "ringex_rejects_total", code="insufficient_funds")
    before_hist = sum(value(exchange, "ringex_gateway_place_ack_seconds_count", gateway=g)
                      for g in ("0", "1"))

    async def go():
        key, _ = await funded(exchange, USD="100000")
        broke, _ = await funded(exchange)
        async with await connect(exchange.url, key) as c, \
                await connect(exchange.url, broke) as poor:
            for i in range(5):
                ack = await c.place("BTC-USD", "buy", "0.01", str(20000 + i))
                assert not isinstance(ack, Reject), ack
            rej = await poor.place("BTC-USD", "buy", "1", "30000")
            assert isinstance(rej, Reject) and rej.code == "insufficient_funds"
            await c.cancel_all()
    run(go())
    wait_value(exchange, "ringex_events_total", before_acks + 5, kind="ack")
    wait_value(exchange, "ringex_rejects_total", before_rejects + 1, code="insufficient_funds")
    s = samples(exchange)
    hist = sum(s[("ringex_gateway_place_ack_seconds_count", (("gateway", g),))]
               for g in ("0", "1"))
    assert hist == before_hist + 6                    # five acks and the reject
    assert s[("ringex_engine_commands_total", ())] >= 6
    assert s[("ringex_engine_group_seconds_count", ())] >= 6  # one group per request here
    assert s[("ringex_engine_group_seconds_sum", ())] > 0
    assert s[("ringex_process_up", (("process", "engine"),))] == 1
    assert s[("ringex_writer_connected", ())] == 1
    assert s[("ringex_ring_capacity_records", (("ring", "g0-cmd"),))] > 0


def test_gateway_gauges_follow_connections_and_subscriptions(exchange):
    async def go():
        clients = [await connect(exchange.url) for _ in range(4)]
        try:
            for c in clients:
                await c.subscribe("trades", "BTC-USD")
            total = lambda name: sum(value(exchange, name, gateway=g)  # noqa: E731
                                     for g in ("0", "1"))
            deadline = time.monotonic() + TIMEOUT_S
            while total("ringex_gateway_subscriptions") < 4 \
                    or total("ringex_gateway_connections") < 4:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            for c in clients:
                await c.close()
    run(go())


def test_healthz_is_ok_while_every_process_runs(exchange):
    status, body = fetch(exchange.http_url + "healthz")
    doc = json.loads(body)
    assert status == 200 and doc["ok"] is True and doc["problems"] == [], doc


def test_unknown_paths_are_404_and_files_stay_inside_the_web_folder(exchange):
    assert fetch(exchange.http_url + "nope")[0] == 404
    assert fetch(exchange.http_url + "web/../../pyproject.toml")[0] == 404
    assert fetch(exchange.http_url + "web/%2e%2e/config.py")[0] == 404
    status, body = fetch(exchange.http_url + "config.json")
    doc = json.loads(body)
    assert status == 200 and doc["ws_port"] == exchange.port
    assert [s["symbol"] for s in doc["symbols"]][:1] == ["BTC-USD"]


def test_status_command_prints_health_and_counters(exchange):
    out = subprocess.run([sys.executable, "-m", "ringex.cli", "status", "--data-dir",
                          str(exchange.data_dir)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "healthy" in out.stdout and "ringex_engine_commands" in out.stdout
    js = subprocess.run([sys.executable, "-m", "ringex.cli", "status", "--json", "--data-dir",
                         str(exchange.data_dir)], capture_output=True, text=True, timeout=60)
    doc = json.loads(js.stdout)
    assert doc["health"]["ok"] is True
    assert doc["metrics"]["ringex_engine_state"]["samples"] == [[{}, 1.0]]


def test_status_command_says_when_nothing_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ringex.cli", "status", "--data-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"no exchange runs on {tmp_path}" in out.stderr


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/status.json"])
def test_endpoints_answer_json_or_text(exchange, path):
    status, body = fetch(exchange.http_url + path.lstrip("/"))
    assert status == 200 and body


def test_refused_handshakes_and_abuse_closes_are_counted(exchange):
    total = lambda name: sum(value(exchange, name, gateway=g)  # noqa: E731
                             for g in ("0", "1"))
    refused = total("ringex_gateway_handshakes_refused_total")
    abuse = total("ringex_gateway_abuse_closes_total")

    async def go():
        with pytest.raises(ClientError, match="auth_failed"):    # HTTP 401
            await connect(exchange.url, "not-a-key")
        c = await connect(exchange.url)
        await c.ws.send(b"\x00binary")                   # a binary frame: closed 1003
        await c.ws.wait_closed()
    run(go())
    deadline = time.monotonic() + TIMEOUT_S
    while total("ringex_gateway_handshakes_refused_total") < refused + 1 \
            or total("ringex_gateway_abuse_closes_total") < abuse + 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_sample_grafana_dashboard_uses_only_exported_metrics(exchange):
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs"
                            / "grafana-dashboard.json").read_text())
    used = {name for panel in dashboard["panels"] for t in panel["targets"]
            for name in re.findall(r"\bringex_\w+", t["expr"])}
    exported = {name for name, _ in samples(exchange)}
    assert used and used <= exported, used - exported


def test_only_the_matcher_loads_numba(exchange):
    """numba and LLVM cost a process ~140 MB and ~1 s of start-up: the supervisor, the
    writer and the gateways work without them (docs/operations.md, footprint)."""
    assert exchange.proc is not None
    pids = [exchange.proc.pid, *descendants(exchange.proc.pid)]
    loaded = {}
    for pid in pids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().split(b"\0")[0].decode(errors="replace")
        with open(f"/proc/{pid}/maps") as f:
            loaded[title] = "libllvmlite" in f.read()
    engines = [t for t in loaded if t.startswith("ringex-engine")]
    assert len(engines) == 1 and loaded[engines[0]], loaded
    assert not any(v for t, v in loaded.items() if t not in engines), loaded
