"""Fixtures of the end-to-end tests."""
from __future__ import annotations

import pytest

from tests.e2e.live_exchange import LiveExchange


@pytest.fixture(scope="module")
def exchange():
    """``ringex run`` with two gateways for the whole module; must stop cleanly."""
    ex = LiveExchange(gateways=2).start()
    try:
        yield ex
    finally:
        code = ex.close()
        assert code == 0 and not ex.leftovers, (code, ex.leftovers, ex.log_tail())
