"""The gateway process: ``run_gateway``, what the supervisor starts once per gateway
(the contract is docs/architecture.md section 4).

Attaches the rings, builds the ``Gateway``, listens, and until ``stop_event`` is set (or
the supervisor dies) flushes audit records and pings the clients; then stops it and
closes the rings. Limits are the config's ``[gateway]`` section; the environment
variable ``RINGEX_SESSION_LIMITS`` (``rate_per_s=100000,burst=100000``) overrides them
for benchmarks and tests, and ``RINGEX_GATEWAY_WAIT`` (busy_spin, spin_then_sleep,
eventfd) overrides the gateways' wait strategy alone.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ringex.config import Config, GatewayLimits
from ringex.gateway.auth import KeyLookup
from ringex.gateway.server import Gateway
from ringex.gateway.stats import GatewayStat, GatewayStats
from ringex.logs import setup_logging
from ringex.records import COMMAND, EVENT
from ringex.ring.broadcast import BroadcastRing
from ringex.ring.spsc import SpscRing

log = logging.getLogger("ringex.gateway")

HOUSEKEEPING_S = 0.05             # stop-event / parent checks, audit flushes
KEEPALIVE_S = 20.0                # ping every client this often (docs/protocol.md §7)
GAUGES_S = 1.0                    # connection and subscription gauges for the metrics


def limits_from_env(text: str | None = None,
                    base: GatewayLimits = GatewayLimits()) -> GatewayLimits:
    """``base`` (the config's ``[gateway]``) with the overrides of ``RINGEX_SESSION_LIMITS``
    (``name=int,...``; for benchmarks)."""
    text = os.environ.get("RINGEX_SESSION_LIMITS", "") if text is None else text
    changes = {}
    names = {f.name for f in dataclasses.fields(GatewayLimits)}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        if name.strip() not in names or not value.strip().isdigit():
            raise ValueError(f"RINGEX_SESSION_LIMITS: bad item {item!r}; "
                             f"use name=integer with a name of {sorted(names)}")
        changes[name.strip()] = int(value)
    return dataclasses.replace(base, **changes)


def run_gateway(index: int, ring_names: dict[str, str], config_path: str | None,
                db_url: str, host: str, port: int, data_dir: str, queue,
                stop_event, wait_strategy: str, ready_event=None,
                wakeups: dict | None = None, stats: GatewayStats | None = None) -> None:
    """Run gateway ``index`` until ``stop_event`` is set (docs/architecture.md section 4);
    ``stats``: its counters, shared with the supervisor's metrics."""
    run: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop
        run = uvloop.run
    except ImportError:                      # pragma: no cover
        run = asyncio.run
    setup_logging()
    config = Config.load(config_path)
    run(_serve(index, ring_names, config, db_url, host, port, data_dir, queue, stop_event,
               wait_strategy, ready_event, wakeups, stats))


async def _serve(index, ring_names, config, db_url, host, port, data_dir, queue, stop_event,
                 wait_strategy, ready_event, wakeups, stats) -> None:
    parent = os.getppid()
    cmd = SpscRing.attach(ring_names["cmd"], COMMAND, role="producer")
    evt = SpscRing.attach(ring_names["evt"], EVENT, role="consumer")
    md = BroadcastRing.attach(ring_names["md"], EVENT)
    keys = KeyLookup(db_url, data_dir)
    wait_strategy = os.environ.get("RINGEX_GATEWAY_WAIT") or wait_strategy
    gw = Gateway(index, config, cmd, evt, md, keys, queue, wait_strategy=wait_strategy,
                 wakeups=wakeups, limits=limits_from_env(base=config.gateway), stats=stats)
    try:
        await gw.start(host, port)
        log.info("gateway %d listening on ws://%s:%d/ws", index, host, port)
        if ready_event is not None:
            ready_event.set()
        next_ping = time.monotonic() + KEEPALIVE_S
        next_gauges = 0.0
        while not stop_event.is_set():
            if os.getppid() != parent:
                log.error("gateway %d: the supervisor died; stopping", index)
                break
            await asyncio.sleep(HOUSEKEEPING_S)
            gw.audit.flush()
            if time.monotonic() >= next_ping:
                gw.keepalive()
                next_ping = time.monotonic() + KEEPALIVE_S
            if time.monotonic() >= next_gauges:
                _set_gauges(gw)
                next_gauges = time.monotonic() + GAUGES_S
        await gw.stop()
    finally:
        del gw
        cmd.close()
        evt.close()
        md.close()


def _set_gauges(gw: Gateway) -> None:
    gw.stats.set(GatewayStat.CONNECTIONS, len(gw.conns))
    gw.stats.set(GatewayStat.SUBSCRIPTIONS, gw.fanout.subscription_count())
    gw.stats.set(GatewayStat.PENDING, sum(c.session.pending_count() for c in gw.conns.values()))
    gw.stats.set(GatewayStat.MD_LOST, gw.pump.lost_md)
