"""Per-config lookup tables the protocol needs: symbols by name and id, their steps."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ringex.config import Asset, Config, Symbol
from ringex.units import Step


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: Symbol
    price: Step          # one tick
    qty: Step            # one lot
    fee: Step            # one quote minor unit (fees are in quote)

    @property
    def id(self) -> int:
        return self.symbol.id

    @property
    def name(self) -> str:
        return self.symbol.name


@dataclass(frozen=True, slots=True)
class AssetInfo:
    asset: Asset
    unit: Step           # one minor unit


class Tables:
    """Symbols and assets of one Config, indexed for the hot path. Build with
    :func:`tables_for`; it is cached, so every session of a gateway shares one."""

    def __init__(self, config: Config):
        self.config = config
        self.symbols: dict[int, SymbolInfo] = {}
        self.by_name: dict[str, SymbolInfo] = {}
        for s in config.symbols:
            info = SymbolInfo(s, s.price_step, s.qty_step, s.quote.unit)
            self.symbols[s.id] = info
            self.by_name[s.name] = info
        self.assets: dict[int, AssetInfo] = {
            a.id: AssetInfo(a, a.unit) for a in config.assets}
        self.assets_by_name: dict[str, AssetInfo] = {
            a.asset.name: a for a in self.assets.values()}


@lru_cache(maxsize=16)
def tables_for(config: Config) -> Tables:
    return Tables(config)
