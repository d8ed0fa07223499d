"""Metrics of a running exchange: one reading of every process's shared counters.

    probe = Probe(supervisor)
    probe.families()       # prometheus_client metric families (the /metrics endpoint)
    probe.status()         # the same, as plain JSON (/status.json, ``ringex status``)
    probe.health()         # (ok, details) for /healthz

Everything is read from counters the processes already keep in shared memory (the
engine's ``ctl`` words, the writer's stats, each gateway's ``GatewayStats``, the ring
headers) or from the file system; a scrape adds nothing to any hot path. Metric names
are listed in docs/operations.md.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric,
)

from ringex.core.engine.control import HIST_BUCKETS, HIST_FIRST_NS, HIST_WORDS, Ctl, State
from ringex.core.engine.replication import Repl, as_array
from ringex.gateway.stats import GatewayStat
from ringex.ops.counters import Histogram
from ringex.records import EventKind, RejectCode
from ringex.ring.spsc import SpscRing
from ringex.storage.writer_stats import Stat

if TYPE_CHECKING:
    from ringex.ops.supervisor import Supervisor

GROUP_BOUNDS_NS = tuple(HIST_FIRST_NS << b for b in range(HIST_BUCKETS - 1))
HEARTBEAT_STALE_S = 5.0      # an engine heartbeat older than this fails /healthz
NS = 1e9

_ENGINE_COUNTERS = (
    (Ctl.BATCHES, "batches", "Command batches matched"),
    (Ctl.COMMANDS, "commands", "Commands processed"),
    (Ctl.EVENTS, "events", "Events produced (private and public)"),
    (Ctl.MD, "market_data_records", "Market-data records published"),
    (Ctl.HANDOFFS, "handoffs", "Hand-offs of processed batches to the writer"),
    (Ctl.JOURNAL_BYTES, "journal_bytes", "Journal bytes written by this run"),
    (Ctl.JOURNAL_ENTRIES, "journal_entries", "Journal entries written by this run"),
    (Ctl.JOURNAL_DISK_FULL_PAUSES, "journal_disk_full_pauses",
     "Times acknowledgements paused because the journal's disk was full"),
)
_WRITER_COUNTERS = (
    (Stat.GROUPS, "transactions", "Database transactions committed"),
    (Stat.PAYLOADS, "payloads", "Engine and gateway payloads written"),
    (Stat.SKIPPED, "payloads_skipped", "Payloads skipped as already written (replays)"),
    (Stat.TRADES, "trades", "Trade rows written"),
    (Stat.ROWS, "rows", "Rows written, every table"),
    (Stat.FAILURES, "database_errors", "Failed connects or transactions (each is retried)"),
    (Stat.DEAD_LETTERS, "dead_letters", "Malformed payloads kept aside"),
)
_GATEWAY_COUNTERS = (
    (GatewayStat.ACCEPTED, "connections_accepted", "Connections accepted"),
    (GatewayStat.REFUSED, "handshakes_refused", "Handshakes refused (path, key, limits)"),
    (GatewayStat.ABUSE_CLOSES, "abuse_closes",
     "Connections closed for floods, oversized or binary frames, failed logins"),
    (GatewayStat.SLOW_CONSUMER_CLOSES, "slow_consumer_closes",
     "Connections closed for not reading (1013)"),
    (GatewayStat.OVERLOADED, "overloaded", "Commands refused `overloaded` (ring full)"),
    (GatewayStat.MD_LOST, "market_data_lost", "Market-data records lost to a ring lap"),
)
_GATEWAY_GAUGES = (
    (GatewayStat.CONNECTIONS, "connections", "Open WebSocket connections"),
    (GatewayStat.SUBSCRIPTIONS, "subscriptions", "Market-data subscriptions"),
    (GatewayStat.PENDING, "pending_requests", "Requests awaiting the engine"),
)


class Probe:
    def __init__(self, supervisor: "Supervisor"):
        self.sup = supervisor
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # ------------------------------------------------------------ the three views
    def prometheus_text(self) -> bytes:
        return generate_latest(self.registry)

    def status(self) -> dict:
        """Every sample as ``{family: {"help", "type", "samples": [[labels, value]]}}``."""
        out = {}
        for family in self.collect():
            out[family.name] = {"help": family.documentation, "type": family.type,
                                "samples": [[s.labels, s.value] for s in family.samples]}
        return out

    def health(self) -> tuple[bool, dict]:
        """Healthy: every process runs, the engine's heartbeat is fresh, the writer is
        connected to its database."""
        sup, problems = self.sup, []
        if sup.engine is None or sup.writer is None:
            return False, {"problems": ["starting"]}
        for name, p in sup.children():
            if not p.is_alive():
                problems.append(f"{name} is not running")
        if sup.engine.ctl[Ctl.JOURNAL_DISK_FULL]:
            problems.append("journal disk full: acknowledgements paused")
        state = State(sup.engine.ctl[Ctl.STATE])
        if state != State.RUNNING:
            problems.append(f"engine is {state.name.lower()}")
        age = _age_s(sup.engine.ctl[Ctl.HEARTBEAT_NS], time.monotonic_ns())
        if age > HEARTBEAT_STALE_S:
            problems.append(f"engine heartbeat is {age:.1f} s old")
        writer = sup.writer.stats()
        if writer["disk_full"]:
            problems.append("database disk full: the writer is retrying")
        elif not writer["connected"]:
            problems.append("writer is not connected to its database")
        return not problems, {"problems": problems, "engine_heartbeat_age_s": round(age, 3)}

    # ------------------------------------------------------------ the collector
    def collect(self) -> Iterator[Metric]:
        sup = self.sup
        up = GaugeMetricFamily("ringex_process_up", "1 while the process runs",
                               labels=["process"])
        if sup.engine is None or sup.writer is None:
            return
        for name, p in sup.children():
            up.add_metric([name], 1.0 if p.is_alive() else 0.0)
        yield up
        yield from self._engine()
        yield from self._writer()
        yield from self._rings()
        yield from self._gateways()
        if sup.replication_words is not None:
            yield from self._replicator(as_array(sup.replication_words))

    def _engine(self) -> Iterator[Metric]:
        assert self.sup.engine is not None
        ctl = self.sup.engine.ctl
        yield GaugeMetricFamily("ringex_engine_state", "0 starting, 1 running, 2 draining, "
                                "3 stopped, 4 failed", value=ctl[Ctl.STATE])
        yield GaugeMetricFamily("ringex_engine_heartbeat_age_seconds",
                                "Seconds since the engine's last housekeeping",
                                value=_age_s(ctl[Ctl.HEARTBEAT_NS], time.monotonic_ns()))
        for word, name, text in _ENGINE_COUNTERS:
            yield CounterMetricFamily(f"ringex_engine_{name}", text, value=ctl[word])
        yield GaugeMetricFamily("ringex_engine_dropped_gateways",
                                "Gateways whose rings the engine stopped serving",
                                value=ctl[Ctl.DROPPED_GATEWAYS])
        yield GaugeMetricFamily("ringex_engine_journal_disk_full",
                                "1 while acknowledgements wait for space on the journal's disk",
                                value=ctl[Ctl.JOURNAL_DISK_FULL])
        yield CounterMetricFamily("ringex_engine_journal_paused_seconds",
                                  "Time acknowledgements waited for journal disk space",
                                  value=ctl[Ctl.JOURNAL_PAUSED_NS] / NS)
        yield CounterMetricFamily("ringex_engine_journal_fsync_seconds",
                                  "Time in fsync of the journal (--fsync batch)",
                                  value=ctl[Ctl.JOURNAL_FSYNC_NS] / NS)
        groups = Histogram(ctl[Ctl.GROUP_HIST:Ctl.GROUP_HIST + HIST_WORDS], GROUP_BOUNDS_NS)
        h = HistogramMetricFamily("ringex_engine_group_seconds",
                                  "Matching and journaling of one group of commands "
                                  "(a batch: up to 64 per gateway)")
        h.add_metric([], _buckets(groups), groups.sum_ns / NS)
        yield h

    def _writer(self) -> Iterator[Metric]:
        writer, engine = self.sup.writer, self.sup.engine
        assert writer is not None and engine is not None
        s = writer.stats()
        for word, name, text in _WRITER_COUNTERS:
            yield CounterMetricFamily(f"ringex_writer_{name}", text, value=s[word.name.lower()])
        yield GaugeMetricFamily("ringex_writer_connected", "1 while the database is reachable",
                                value=s["connected"])
        yield GaugeMetricFamily("ringex_writer_disk_full",
                                "1 while the database's last write failed for a full disk",
                                value=s["disk_full"])
        yield GaugeMetricFamily("ringex_writer_backlog_bytes",
                                "Payload bytes held while the database is down",
                                value=s["backlog_bytes"])
        lag = max(0, int(engine.ctl[Ctl.HANDOFFS]) - s["payloads"] - s["skipped"])
        yield GaugeMetricFamily("ringex_writer_lag_payloads",
                                "Engine hand-offs not yet in the database", value=lag)
        yield GaugeMetricFamily("ringex_writer_lag_seconds",
                                "Age of the newest payload in the database when the writer "
                                "is behind, else 0",
                                value=_age_s(s["last_payload_ns"], time.time_ns()) if lag else 0)
        kinds, codes = writer.event_counts()
        events = CounterMetricFamily("ringex_events", "Events in the database, by kind",
                                     labels=["kind"])
        for kind in EventKind:
            events.add_metric([kind.name.lower()], kinds[kind])
        yield events
        rejects = CounterMetricFamily("ringex_rejects", "Rejects in the database, by code",
                                      labels=["code"])
        for code in RejectCode:
            if code != RejectCode.OK:
                rejects.add_metric([code.name.lower()], codes[code])
        yield rejects

    def _replicator(self, w) -> Iterator[Metric]:
        """The replicator's shared words (ringex/core/engine/replication.py)."""
        yield GaugeMetricFamily("ringex_replicator_state", "0 starting, 1 running, "
                                "2 stopped, 3 failed", value=w[Repl.STATE])
        yield GaugeMetricFamily("ringex_replicator_heartbeat_age_seconds",
                                "Seconds since the replicator's last turn",
                                value=_age_s(w[Repl.HEARTBEAT_NS], time.monotonic_ns()))
        yield GaugeMetricFamily("ringex_replicator_stored_batch", "The last journal batch "
                                "the stream's quorum has stored (every earlier one too)",
                                value=w[Repl.THROUGH])
        yield GaugeMetricFamily("ringex_replicator_unstored_batches", "Journal batches sent "
                                "to the stream and not yet stored by its quorum",
                                value=max(0, int(w[Repl.SENT]) - int(w[Repl.THROUGH])))
        yield CounterMetricFamily("ringex_replicator_stored_entries", "Journal entries the "
                                  "stream stored for the current replicator",
                                  value=w[Repl.PUBLISHED])
        yield CounterMetricFamily("ringex_replicator_resyncs", "Times the replicator asked "
                                  "the stream where it stands (timeouts, refusals)",
                                  value=w[Repl.RESYNCS])
        yield GaugeMetricFamily("ringex_replicator_fenced", "1 once another primary wrote "
                                "to the stream (this exchange stops)",
                                value=1.0 if w[Repl.FENCED] else 0.0)

    def _rings(self) -> Iterator[Metric]:
        used = GaugeMetricFamily("ringex_ring_used_records", "Records waiting in a ring",
                                 labels=["ring"])
        size = GaugeMetricFamily("ringex_ring_capacity_records", "A ring's capacity",
                                 labels=["ring"])
        for name, ring in self.sup.ring_roles():
            # the market-data ring is overwritten, never full: its readers' losses are
            # ringex_gateway_market_data_lost
            if ring.closed or not isinstance(ring, SpscRing):
                continue
            used.add_metric([name], len(ring))
            size.add_metric([name], ring.capacity)
        yield used
        yield size

    def _gateways(self) -> Iterator[Metric]:
        stats = self.sup.gateway_stats
        for word, name, text in _GATEWAY_COUNTERS:
            f = CounterMetricFamily(f"ringex_gateway_{name}", text, labels=["gateway"])
            for i, st in enumerate(stats):
                f.add_metric([str(i)], st.get(word))
            yield f
        for word, name, text in _GATEWAY_GAUGES:
            g = GaugeMetricFamily(f"ringex_gateway_{name}", text, labels=["gateway"])
            for i, st in enumerate(stats):
                g.add_metric([str(i)], st.get(word))
            yield g
        h = HistogramMetricFamily(
            "ringex_gateway_place_ack_seconds",
            "Place to ack or reject inside the gateway: command ring, engine, event ring",
            labels=["gateway"])
        for i, st in enumerate(stats):
            h.add_metric([str(i)], _buckets(st.acks), st.acks.sum_ns / NS)
        yield h


def _buckets(hist: Histogram) -> list[tuple[str, float]]:
    counts = hist.counts()
    bounds = [f"{b / NS:g}" for b in hist.bounds] + ["+Inf"]
    return list(zip(bounds, counts))


def _age_s(then_ns: int, now_ns: int) -> float:
    return max(0.0, (now_ns - then_ns) / NS) if then_ns else 0.0
