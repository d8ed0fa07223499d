"""Market configuration: exact conversions and clear validation errors."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from ringex.config import Config, GatewayLimits
from ringex.core.snapshot import config_fingerprint
from ringex.errors import ConfigError

USD_BTC = {"USD": 6, "BTC": 8}


def symbol(**over):
    spec = {"base": "BTC", "quote": "USD", "tick": "0.01", "lot": "0.0001",
            "min_price": "0.01", "max_price": "100000", "maker_fee_bps": 1, "taker_fee_bps": 5}
    spec.update(over)
    return spec


def build(**over):
    return Config.build(USD_BTC, {"BTC-USD": symbol(**over)})


def test_should_load_the_shipped_config_with_exact_units():
    cfg = Config.default()
    btc = cfg.symbol("BTC-USD")
    assert (btc.tick_lot_value, btc.lot_units, btc.min_tick, btc.max_tick) == \
        (1, 10_000, 1, 10_000_000)
    assert {s.name for s in cfg.symbols} >= {"BTC-USD", "ETH-USD", "ETH-BTC"}


def test_should_read_a_toml_file(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[assets]\nUSD = { scale = 2 }\nX = { scale = 0 }\n'
                    '[symbols.X-USD]\nbase = "X"\nquote = "USD"\ntick = "0.05"\nlot = "1"\n'
                    'min_price = "0.05"\nmax_price = "10"\n[limits]\nmax_orders = 100\n')
    cfg = Config.from_toml(path)
    x = cfg.symbol("X-USD")
    assert (x.tick_lot_value, x.max_tick, cfg.limits.max_orders) == (5, 200, 100)


def test_should_convert_prices_and_quantities_exactly_or_refuse():
    btc = build().symbol("BTC-USD")
    assert btc.price_to_ticks("50000.01") == 5_000_001
    assert btc.qty_to_lots("0.0003") == 3
    assert btc.ticks_to_price(5_000_001) == Decimal("50000.01")
    with pytest.raises(ConfigError, match="whole multiple"):
        btc.price_to_ticks("50000.005")
    with pytest.raises(ConfigError, match="whole multiple"):
        btc.qty_to_lots("0.00015")


@pytest.mark.parametrize("over, message", [
    ({"base": "DOGE"}, "unknown base asset"),
    ({"quote": "EUR"}, "unknown quote asset"),
    ({"base": "USD"}, "same asset"),
    ({"tick": "0.0000001"}, "not a whole number of minor units"),
    ({"tick": "1000", "lot": "0.000000001", "min_price": "1000"}, "finer than BTC.s minor unit"),
    ({"min_price": "10", "max_price": "5"}, "empty price band"),
    ({"min_price": "0.015"}, "whole multiple"),
    ({"tick": 0.01}, "not a float"),
    ({"tick": "-1"}, "must be positive"),
    ({"tick": "abc"}, "not a decimal"),
    ({"maker_fee_bps": 9, "taker_fee_bps": 5}, "maker_fee_bps above taker_fee_bps"),
    ({"taker_fee_bps": 5000}, "integer 0..1000"),
    ({"max_price": "100000000"}, "at most"),
    ({"colour": "red"}, "unknown field"),
])
def test_should_refuse_a_bad_symbol_with_a_clear_message(over, message):
    with pytest.raises(ConfigError, match=message):
        build(**over)


def test_should_refuse_duplicate_keys_and_bad_sections(tmp_path):
    path = tmp_path / "dup.toml"
    path.write_text('[assets]\nUSD = { scale = 2 }\nUSD = { scale = 3 }\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.from_toml(path)
    with pytest.raises(ConfigError, match="unknown section"):
        Config.from_dict({"assets": {"USD": {"scale": 2}}, "symbolz": {}})
    with pytest.raises(ConfigError, match="no symbols"):
        Config.build(USD_BTC, {})
    with pytest.raises(ConfigError, match="scale must be"):
        Config.build({"USD": 40}, {"X": symbol()})


def test_should_refuse_bad_limits():
    with pytest.raises(ConfigError, match="positive integer"):
        Config.build(USD_BTC, {"BTC-USD": symbol()}, max_orders=0)
    with pytest.raises(ConfigError, match="unknown field"):
        Config.build(USD_BTC, {"BTC-USD": symbol()}, max_ordres=10)
    with pytest.raises(ConfigError, match="below 16,777,216"):
        Config.build(USD_BTC, {"BTC-USD": symbol()}, max_orders=1 << 24)


def test_should_name_unknown_symbols_and_assets():
    cfg = build()
    with pytest.raises(ConfigError, match="unknown symbol 'ETH-USD'"):
        cfg.symbol("ETH-USD")
    with pytest.raises(ConfigError, match="unknown asset 'EUR'"):
        cfg.asset("EUR")


def _minimal() -> dict:
    return {"assets": {"USD": {"scale": 6}, "BTC": {"scale": 8}},
            "symbols": {"BTC-USD": symbol()}}


def test_gateway_limits_come_from_the_config_file_and_do_not_change_its_fingerprint():
    default = Config.default()
    assert default.gateway == GatewayLimits()         # the shipped file lists the defaults
    custom = Config.from_dict({**_minimal(), "gateway": {"rate_per_s": 5, "ip_connections": 2}})
    assert (custom.gateway.rate_per_s, custom.gateway.ip_connections) == (5, 2)
    assert config_fingerprint(replace(default, gateway=custom.gateway)) == \
        config_fingerprint(default)                   # snapshots stay valid
    with pytest.raises(ConfigError, match="gateway: unknown field"):
        Config.from_dict({**_minimal(), "gateway": {"rate": 5}})
    with pytest.raises(ConfigError, match="gateway.burst must be a positive integer"):
        Config.from_dict({**_minimal(), "gateway": {"burst": 0}})
