"""``[cluster]`` in the config file: where the replicated journal lives and how durable an
acknowledgement is (docs/cluster.md). Not part of the snapshot fingerprint."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ringex.core.engine.replication import DURABILITIES
from ringex.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ClusterOptions:
    url: str = ""                  # NATS servers, comma-separated; "" = no cluster
    name: str = "ringex"           # the exchange's name: subject ringex.<name>.journal
    stream: str = ""               # JetStream stream; "" = <name>-journal
    replicas: int = 3              # copies the stream keeps (its quorum: replicas // 2 + 1)
    durability: str = "local"      # local: ack after the local journal; replicated: after
                                   # the stream's quorum stored the group too
    window: int = 64               # appends in flight at once
    ack_timeout_ms: int = 2000     # an append unanswered this long: ask the stream again
    connect_timeout_ms: int = 10000  # start-up: reaching NATS and setting the stream up
    lease_ttl_ms: int = 3000       # the primary's lease lapses this long after its last
                                   # heartbeat (one every third of it); a standby then may
                                   # take over

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    @property
    def subject(self) -> str:
        return f"ringex.{self.name}.journal"

    @property
    def stream_name(self) -> str:
        return self.stream or f"{self.name}-journal"

    @property
    def lease_bucket(self) -> str:
        return f"{self.name}-lease"

    def with_overrides(self, url: str | None = None,
                       durability: str | None = None) -> "ClusterOptions":
        """These options with the command line's ``--cluster`` / ``--durability``."""
        out = replace(self, url=url if url is not None else self.url,
                      durability=durability or self.durability)
        return parse_cluster(out.__dict__, "command line")


def parse_cluster(spec: dict, source: str) -> ClusterOptions:
    unknown = set(spec) - set(ClusterOptions.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{source}: cluster: unknown field(s) {sorted(unknown)}")
    for key in ("url", "name", "stream", "durability"):
        if key in spec and not isinstance(spec[key], str):
            raise ConfigError(f"{source}: cluster.{key} must be a string")
    for key in ("replicas", "window", "ack_timeout_ms", "connect_timeout_ms",
                "lease_ttl_ms"):
        v = spec.get(key, 1)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{source}: cluster.{key} must be a positive integer")
    opts = ClusterOptions(**spec)
    if not _NAME.match(opts.name) or (opts.stream and not _NAME.match(opts.stream)):
        raise ConfigError(f"{source}: cluster.name and cluster.stream take letters, digits, "
                          "'-' and '_' only")
    if opts.durability not in DURABILITIES:
        raise ConfigError(f"{source}: cluster.durability must be one of {DURABILITIES}")
    if opts.durability == "replicated" and not opts.enabled:
        raise ConfigError(f"{source}: cluster.durability 'replicated' needs cluster.url "
                          "(or --cluster)")
    if opts.lease_ttl_ms < 300:
        raise ConfigError(f"{source}: cluster.lease_ttl_ms must be at least 300 (a heartbeat "
                          "every third of it)")
    if opts.replicas > 5:
        raise ConfigError(f"{source}: cluster.replicas must be 1..5 (JetStream's limit)")
    for u in opts.servers:
        if not u.startswith(("nats://", "tls://")):
            raise ConfigError(f"{source}: cluster.url: {u!r} is not a nats:// URL")
    return opts
