"""docs/storage.md documents every table and column of the schema."""
from __future__ import annotations

import re
from pathlib import Path

from ringex.storage.schema import TABLES, VIEWS

DOC = (Path(__file__).parents[2] / "docs" / "storage.md").read_text()


def test_should_document_every_table_and_column():
    missing = []
    for t in TABLES.values():
        if not re.search(rf"^###.*\b{t.name}\b", DOC, re.M):
            missing.append(t.name)
        for c in t.column_names:
            if f"`{c}`" not in DOC and f"`{t.name}.{c}`" not in DOC:
                missing.append(f"{t.name}.{c}")
    missing += [v for v in VIEWS if f"**`{v}`**" not in DOC]
    assert not missing, f"not in docs/storage.md: {missing}"
