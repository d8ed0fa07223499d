"""What a starting engine is given from the database: everything on a data dir without
engine state, only the batch to continue from when its snapshots and journal exist."""
from __future__ import annotations

import pytest

from ringex.core.engine.start import load_start_state
from ringex.core.state_layout import has_engine_state
from ringex.records import CommandKind
from ringex.storage.projection import Projector
from ringex.storage.stores import open_repository
from tests.storage.test_repository import payloads, session_steps


@pytest.fixture
def repo(db_url, market_config):
    r = open_repository(db_url, market_config)
    r.write(Projector(market_config).project(payloads(session_steps())))
    yield r
    r.close()


def test_start_state_from_the_database_has_balances_sequences_and_the_last_order(
        repo, market_config):
    start = load_start_state(repo, market_config)
    assert start.balances and any(start.seqs) and start.last_order_id == 5
    assert start.first_batch == len(session_steps()) + 1


def test_start_state_over_engine_state_reads_only_the_batch_and_keeps_transfers(
        repo, market_config):
    transfers = [(CommandKind.DEPOSIT, 1, 0, 100)]
    start = load_start_state(repo, market_config, transfers, from_database=False)
    assert start.balances == [] and start.seqs == [] and start.last_order_id == 0
    assert start.transfers == transfers and start.first_batch == len(session_steps()) + 1


def test_engine_state_exists_once_a_snapshot_or_a_journal_segment_does(tmp_path):
    assert not has_engine_state(tmp_path)
    (tmp_path / "journal").mkdir()
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "snap-x.tmp").write_bytes(b"")      # an interrupted write
    assert not has_engine_state(tmp_path)
    (tmp_path / "journal" / f"seg-{1:020d}.rxj").write_bytes(b"")
    assert has_engine_state(tmp_path)
