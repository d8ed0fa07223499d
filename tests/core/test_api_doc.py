"""docs/api.md's example runs as written and the record tables name every field."""
import re
from pathlib import Path

from ringex import records
from ringex.records import EventKind, Side

DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()


def test_should_run_the_api_example_as_documented():
    ns: dict = {}
    exec(re.search(r"```python\n(.*?)```", DOC, re.S).group(1), ns)
    svc, btc, events = ns["svc"], ns["btc"], ns["events"]
    assert [EventKind(int(k)).name for k in events["kind"]] == ["ACK", "ACK", "FILL", "FILL"]
    assert svc.depth_at(btc, Side.SELL, 5_000_000) == 60
    assert svc.best_bid(btc) is None and svc.best_ask(btc) == 5_000_000


def test_should_document_every_record_field():
    for dtype in (records.COMMAND, records.EVENT):
        for name in dtype.names:
            assert f"| `{name}` |" in DOC, f"docs/api.md misses field {name}"
