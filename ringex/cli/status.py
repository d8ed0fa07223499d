"""``ringex status``: health and every counter of the exchange running on a data dir.

Asks the running supervisor's HTTP endpoint (its address is in ``DATA_DIR/ringex.run``)
for ``/healthz`` and ``/status.json``, the same numbers ``/metrics`` exports, and prints
them as a table (``--json``: the raw status document). Exit code 0 when healthy, 1 when
not, or when no exchange runs on the data dir.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ringex.cli.options import json_option
from ringex.ops.datadir import DEFAULT_DATA_DIR, RUN_FILE, offline

TIMEOUT_S = 5.0


@click.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR,
              show_default=True, help="Data directory of the running exchange.")
@json_option
def status(data_dir: str, as_json: bool) -> None:
    """Health and counters of the exchange running on DATA_DIR (exit 1 if unhealthy)."""
    base = _endpoint(Path(data_dir))
    health = _get(base + "healthz")
    doc = _get(base + "status.json")
    if as_json:
        click.echo(json.dumps({"health": health, "metrics": doc}, indent=2))
    else:
        _print(health, doc)
    if not health.get("ok"):
        raise SystemExit(1)


def _endpoint(data_dir: Path) -> str:
    with offline(data_dir) as idle:
        if idle:
            raise click.ClickException(f"no exchange runs on {data_dir}")
    try:
        info = json.loads((data_dir / RUN_FILE).read_text())
    except FileNotFoundError:
        raise click.ClickException(f"the exchange on {data_dir} is starting "
                                   f"(no {RUN_FILE} yet); try again shortly") from None
    if not info.get("http"):
        raise click.ClickException("the exchange runs without its HTTP endpoint "
                                   "(--http-port -1)")
    return str(info["http"])


def _get(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:           # 503 from /healthz still has a body
        return json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None


def _print(health: dict, doc: dict) -> None:
    console = Console()
    if health.get("ok"):
        console.print("[green]healthy[/green]")
    else:
        console.print("[red]unhealthy[/red]: " + "; ".join(health.get("problems", [])))
    table = Table("metric", "labels", "value", box=None, pad_edge=False)
    for name, family in doc.items():
        for labels, value in family["samples"]:
            if "le" in labels:
                continue                              # histogram buckets: see /metrics
            shown = ",".join(f"{k}={v}" for k, v in labels.items())
            table.add_row(name, shown, _number(value))
    console.print(table)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
