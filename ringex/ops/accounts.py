"""Operator-side account tools: the admin account and key, exact amounts, pending transfers.

    ADMIN_ACCOUNT                        the account the admin API key maps to (0, the house)
    ensure_admin_key(data_dir, repo)     <data-dir>/admin.key (0600), its hash in the repo
    to_minor_units(config, "BTC", "1.5") 150000000, or ConfigError if not exact
    transfer(data_dir, config, op, ...)  deposit/withdraw now (an exchange runs) or at its start
    add_pending(data_dir, ...)           a transfer for the next start (no exchange running)
    take_pending(data_dir) / PendingBatch.done() / .restore()

Pending transfers live in ``<data-dir>/pending_transfers.jsonl``, one JSON object per line:
``{"op": "deposit"|"withdraw", "account": 3, "asset": "USD", "units": 1000000}``. At start
the supervisor renames the file aside (``take_pending``), the engine applies the transfers
as its first batch, and the renamed file is deleted once the engine runs (or renamed back
if it failed to start). A renamed file left by a run that died in between is never applied
again automatically (``stale_pending``: the supervisor warns about it).
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ringex.config import FEE_ACCOUNT, Config
from ringex.errors import ConfigError, RingexError
from ringex.ops.datadir import ADMIN_KEY_FILE, PENDING_FILE, offline, running_url
from ringex.records import CommandKind

ADMIN_ACCOUNT = FEE_ACCOUNT          # 0: the house; the core refuses its orders
OPS = {"deposit": CommandKind.DEPOSIT, "withdraw": CommandKind.WITHDRAW}


def ensure_admin_key(data_dir: str | Path, repo) -> str:
    """The admin API key: read ``admin.key``, or create it (mode 0600) and store its hash."""
    path = Path(data_dir) / ADMIN_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if repo.account_for_key(key) == ADMIN_ACCOUNT:
            return key
        # the database was replaced or the file edited: issue a fresh key
    key = repo.add_api_key(ADMIN_ACCOUNT)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    os.replace(tmp, path)
    return key


def read_admin_key(data_dir: str | Path) -> str:
    path = Path(data_dir) / ADMIN_KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"no admin key at {path}: start the exchange once with "
                          f"`ringex run --data-dir {data_dir}`") from None


def to_minor_units(config: Config, asset: str, amount: str) -> int:
    """A positive decimal string in asset units -> an exact count of minor units."""
    units = config.asset(asset).unit.exact(amount, f"{amount} {asset}")
    if units <= 0:
        raise ConfigError(f"amount must be positive, got {amount!r}")
    return units


def transfer(data_dir: str | Path, op: str, account: int, asset: str, amount: str,
             units: int) -> dict:
    """Deposit or withdraw ``units`` (``amount`` as typed) now, through the exchange
    running on ``data_dir``, or store it for that folder's next start. Returns what was
    done (``status`` "applied" with the exchange's reply, or "pending")."""
    with offline(data_dir) as idle:
        if idle:
            add_pending(data_dir, op, account, asset, units)
            return {"op": op, "asset": asset, "amount": amount, "units": units,
                    "status": "pending"}
    url = running_url(data_dir)
    from ringex.client import ClientError, admin_transfer    # only for a running exchange
    try:
        reply = admin_transfer(url, read_admin_key(data_dir), op, account, asset, amount)
    except ClientError as exc:
        raise RingexError(f"{op} refused by the exchange: {exc}") from None
    except OSError as exc:
        raise RingexError(f"exchange at {url} unreachable ({exc}); nothing was applied") from None
    return {"op": op, "asset": asset, "amount": amount, "units": units, "status": "applied",
            "reply": reply}


def parse_deposit(spec: str) -> tuple[str, str]:
    """``ASSET=AMOUNT`` -> (asset, amount)."""
    asset, sep, amount = spec.partition("=")
    if not sep or not asset or not amount:
        raise ConfigError(f"expected ASSET=AMOUNT, got {spec!r}")
    return asset.strip(), amount.strip()


# ------------------------------------------------------------------ pending transfers
@contextmanager
def _locked(data_dir: Path):
    with open(data_dir / (PENDING_FILE + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def add_pending(data_dir: str | Path, op: str, account: int, asset: str, units: int) -> None:
    """Store a deposit/withdrawal for the next start (append, under a file lock)."""
    if op not in OPS:
        raise ConfigError(f"op must be deposit or withdraw, got {op!r}")
    data_dir = Path(data_dir)
    line = json.dumps({"op": op, "account": account, "asset": asset, "units": units})
    with _locked(data_dir), open(data_dir / PENDING_FILE, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def list_pending(data_dir: str | Path) -> list[dict]:
    path = Path(data_dir) / PENDING_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class PendingBatch:
    """Transfers taken aside for one start; ``done()`` or ``restore()`` exactly once."""
    path: Path | None
    items: list[dict]

    def transfers(self, config: Config) -> list[tuple[int, int, int, int]]:
        """(CommandKind, account, asset id, units) for StartState.transfers."""
        return [(int(OPS[t["op"]]), int(t["account"]), config.asset(t["asset"]).id,
                 int(t["units"])) for t in self.items]

    def done(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None

    def restore(self) -> None:
        """Put the transfers back in front of any added since (the start failed)."""
        if self.path is None:
            return
        data_dir = self.path.parent
        with _locked(data_dir):
            target = data_dir / PENDING_FILE
            newer = target.read_text() if target.exists() else ""
            target.write_text(self.path.read_text() + newer)
            self.path.unlink()
        self.path = None


def stale_pending(data_dir: str | Path) -> list[Path]:
    """Transfers a run took aside and never finished (it died): left for the operator."""
    return sorted(Path(data_dir).glob("pending_transfers.*.jsonl"))


def take_pending(data_dir: str | Path, run_id: str) -> PendingBatch:
    """Move the pending transfers aside for this run (new ones go to a fresh file)."""
    data_dir = Path(data_dir)
    with _locked(data_dir):
        src = data_dir / PENDING_FILE
        if not src.exists():
            return PendingBatch(None, [])
        dst = data_dir / f"pending_transfers.{run_id}.jsonl"
        os.replace(src, dst)
    items = [json.loads(line) for line in dst.read_text().splitlines() if line.strip()]
    return PendingBatch(dst, items)
