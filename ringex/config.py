"""Market configuration: assets, symbols and engine limits, validated once.

Every decimal in the file is parsed with ``decimal.Decimal`` from a string and
turned into exact integers here (``ringex.units``), so the engine only ever sees whole
numbers:

- ``price_ticks``  = price / tick
- ``tick_lot_value`` = tick x lot in quote minor units (what one tick for one lot costs)
- ``lot_units``    = lot in base minor units

Validation refuses a tick or lot that would make either of the last two fractional.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from importlib import resources
from pathlib import Path

from ringex.cluster.settings import ClusterOptions, parse_cluster
from ringex.errors import ConfigError
from ringex.units import Step

MAX_BAND_TICKS = 1 << 31          # prices must fit int32 ticks inside a band
FEE_ACCOUNT = 0                   # receives every fee; never trades


@dataclass(frozen=True)
class Asset:
    id: int
    name: str
    scale: int                     # minor unit = 10^-scale

    @cached_property
    def unit(self) -> Step:
        """One minor unit: ``unit.exact("1.5")``, ``unit.format(150000000)``."""
        return Step.minor_unit(self.scale)


@dataclass(frozen=True)
class Symbol:
    id: int
    name: str
    base: Asset
    quote: Asset
    tick: Decimal
    lot: Decimal
    min_tick: int                  # lowest valid price, in ticks
    max_tick: int                  # highest valid price, in ticks
    tick_lot_value: int            # quote minor units per tick per lot
    lot_units: int                 # base minor units per lot
    maker_fee_bps: int
    taker_fee_bps: int

    # -- exact conversions between decimal strings and engine integers (ringex.units)
    @cached_property
    def price_step(self) -> Step:
        return Step(self.tick)

    @cached_property
    def qty_step(self) -> Step:
        return Step(self.lot)

    def price_to_ticks(self, price: str | Decimal) -> int:
        return self.price_step.exact(price, f"{self.name} price {price}")

    def qty_to_lots(self, qty: str | Decimal) -> int:
        return self.qty_step.exact(qty, f"{self.name} quantity {qty}")

    def ticks_to_price(self, ticks: int) -> Decimal:
        return ticks * self.tick

    def lots_to_qty(self, lots: int) -> Decimal:
        return lots * self.lot


@dataclass(frozen=True)
class Limits:
    max_orders: int = 1 << 20
    max_accounts: int = 1 << 16
    max_level_pages: int = 8192


@dataclass(frozen=True)
class GatewayLimits:
    """What one client, one account and one remote address may ask of a gateway
    (``[gateway]`` in the config file; docs/protocol.md section 7)."""
    # per connection
    max_frame_bytes: int = 4096        # larger text frame: close 1009
    rate_per_s: int = 1000             # messages per second, sustained ...
    burst: int = 1000                  # ... and saved up; a debt of `burst` closes with 1008
    max_auth_failures: int = 3         # failed logins before close 1008
    max_pending: int = 1024            # requests awaiting the engine; more: error overloaded
    snapshots_per_min: int = 30        # book snapshots, sustained ...
    snapshot_burst: int = 10           # ... and saved up; more: error rate_limited
    max_output_bytes: int = 8 << 20    # unsent bytes before the client is a slow consumer
    # per account, across its connections to one gateway
    account_rate_per_s: int = 2000
    account_burst: int = 2000
    # per remote address
    ip_connections: int = 100         # open connections to one gateway; more: HTTP 429
    ip_anonymous_rate_per_s: int = 500  # messages of its connections not logged in
    ip_anonymous_burst: int = 1000
    ip_login_failures_per_min: int = 30  # failed logins, sustained ...
    ip_login_failure_burst: int = 10     # ... and saved up; more: login refused unchecked


@dataclass(frozen=True)
class StateOptions:
    """How the engine keeps its state on disk (``[state]``; docs/storage.md, "Journal and
    snapshots"). Not part of the snapshot fingerprint: neither changes what a snapshot
    holds."""
    snapshot_every_bytes: int = 64 << 20   # journal written since the last snapshot that
                                           # triggers the next one (between batches)
    keep_snapshots: int = 2                # recovery points kept once the database holds
                                           # them (at least 2: the newest and a fallback)


@dataclass(frozen=True)
class Config:
    assets: tuple[Asset, ...]
    symbols: tuple[Symbol, ...]
    limits: Limits = field(default_factory=Limits)
    # not in repr: snapshots are fingerprinted by repr(config), and gateway limits do not
    # change what the engine's state means
    gateway: GatewayLimits = field(default_factory=GatewayLimits, repr=False)
    state: StateOptions = field(default_factory=StateOptions, repr=False)
    cluster: ClusterOptions = field(default_factory=ClusterOptions, repr=False)

    @classmethod
    def from_toml(cls, path: str | Path) -> "Config":
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def load(cls, path: str | Path | None) -> "Config":
        """The config in the TOML file ``path``, or the shipped one when None."""
        return cls.from_toml(path) if path else cls.default()

    @classmethod
    def default(cls) -> "Config":
        text = resources.files("ringex").joinpath("default_config.toml").read_text()
        return cls.from_dict(tomllib.loads(text), source="default_config.toml")

    @classmethod
    def build(cls, assets: dict[str, int], symbols: dict[str, dict], **limits) -> "Config":
        """Programmatic constructor: ``build({"USD": 6, "BTC": 8}, {"BTC-USD": {...}})``."""
        return cls.from_dict(
            {"assets": {k: {"scale": v} for k, v in assets.items()},
             "symbols": symbols, "limits": limits},
            source="Config.build",
        )

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "Config":
        unknown = set(data) - {"assets", "symbols", "limits", "gateway", "state", "cluster"}
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)}")
        assets = _parse_assets(data.get("assets") or {}, source)
        by_name = {a.name: a for a in assets}
        symbols = tuple(
            _parse_symbol(i, name, spec, by_name, source)
            for i, (name, spec) in enumerate((data.get("symbols") or {}).items())
        )
        if not symbols:
            raise ConfigError(f"{source}: no symbols defined")
        if len(symbols) >= 0xFFFF:
            raise ConfigError(f"{source}: too many symbols ({len(symbols)})")
        return cls(assets, symbols, _parse_limits(data.get("limits") or {}, source),
                   _parse_positive_ints(GatewayLimits, "gateway", data.get("gateway") or {},
                                        source),
                   parse_state(data.get("state") or {}, source),
                   parse_cluster(data.get("cluster") or {}, source))

    # -- lookups
    def symbol(self, name: str) -> Symbol:
        for s in self.symbols:
            if s.name == name:
                return s
        raise ConfigError(f"unknown symbol {name!r}")

    def asset(self, name: str) -> Asset:
        for a in self.assets:
            if a.name == name:
                return a
        raise ConfigError(f"unknown asset {name!r}")


def _decimal(spec: dict, key: str, where: str) -> Decimal:
    if key not in spec:
        raise ConfigError(f"{where}: missing {key!r}")
    raw = spec[key]
    if isinstance(raw, float):
        raise ConfigError(f"{where}: {key} must be a string or integer, not a float ({raw!r})")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"{where}: {key} {raw!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"{where}: {key} must be positive, got {raw!r}")
    return value


def _parse_assets(spec: dict, source: str) -> tuple[Asset, ...]:
    if not spec:
        raise ConfigError(f"{source}: no assets defined")
    assets = []
    for i, (name, a) in enumerate(spec.items()):
        scale = a.get("scale") if isinstance(a, dict) else None
        if not isinstance(scale, int) or isinstance(scale, bool) or not 0 <= scale <= 18:
            raise ConfigError(f"{source}: asset {name}: scale must be an integer 0..18")
        assets.append(Asset(i, name, scale))
    return tuple(assets)


def _parse_symbol(i: int, name: str, spec: dict, assets: dict, source: str) -> Symbol:
    where = f"{source}: symbol {name}"
    for key in ("base", "quote"):
        if spec.get(key) not in assets:
            raise ConfigError(f"{where}: unknown {key} asset {spec.get(key)!r}")
    base, quote = assets[spec["base"]], assets[spec["quote"]]
    if base is quote:
        raise ConfigError(f"{where}: base and quote are the same asset")
    unknown = set(spec) - {"base", "quote", "tick", "lot", "min_price", "max_price",
                           "maker_fee_bps", "taker_fee_bps"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    tick, lot = _decimal(spec, "tick", where), _decimal(spec, "lot", where)
    tlv = tick * lot * (Decimal(10) ** quote.scale)
    if tlv != tlv.to_integral_value():
        raise ConfigError(f"{where}: tick x lot = {tick * lot} {quote.name} is not a whole "
                          f"number of minor units (scale {quote.scale})")
    lot_units = lot * (Decimal(10) ** base.scale)
    if lot_units != lot_units.to_integral_value():
        raise ConfigError(f"{where}: lot {lot} is finer than {base.name}'s minor unit")
    price = Step(tick)
    lo = price.exact(_decimal(spec, "min_price", where), f"{where}: min_price")
    hi = price.exact(_decimal(spec, "max_price", where), f"{where}: max_price")
    if hi < lo:
        raise ConfigError(f"{where}: empty price band (max_price < min_price)")
    if hi >= MAX_BAND_TICKS:
        raise ConfigError(f"{where}: max_price is {hi} ticks; at most {MAX_BAND_TICKS - 1}")
    fees = []
    for key in ("maker_fee_bps", "taker_fee_bps"):
        v = spec.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 1000:
            raise ConfigError(f"{where}: {key} must be an integer 0..1000")
        fees.append(v)
    if fees[0] > fees[1]:
        raise ConfigError(f"{where}: maker_fee_bps above taker_fee_bps is not supported")
    return Symbol(i, name, base, quote, tick, lot, lo, hi, int(tlv), int(lot_units), *fees)


def _parse_positive_ints(cls, section: str, spec: dict, source: str):
    """``cls(**spec)`` for a dataclass of positive integer fields, every one checked."""
    unknown = set(spec) - set(cls.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{source}: {section}: unknown field(s) {sorted(unknown)}")
    for k, v in spec.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{source}: {section}.{k} must be a positive integer")
    return cls(**spec)


def parse_state(spec: dict, source: str, base: StateOptions | None = None) -> StateOptions:
    """``[state]`` (over ``base``'s values when given, e.g. the file's under an override)."""
    merged = {**(base.__dict__ if base is not None else {}), **spec}
    state = _parse_positive_ints(StateOptions, "state", merged, source)
    if state.keep_snapshots < 2:
        raise ConfigError(f"{source}: state.keep_snapshots must be at least 2")
    return state


def _parse_limits(spec: dict, source: str) -> Limits:
    limits = _parse_positive_ints(Limits, "limits", spec, source)
    if spec.get("max_orders", 1) >= 1 << 24:
        raise ConfigError(f"{source}: limits.max_orders must be below 16,777,216")
    if spec.get("max_accounts", 2) < 2:
        raise ConfigError(f"{source}: limits.max_accounts must be at least 2")
    return limits
