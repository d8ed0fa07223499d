"""Deposits and withdrawals through a running exchange, synchronously: what the CLI uses
when an exchange runs on its data dir (docs/architecture.md section 5)."""
from __future__ import annotations

import asyncio

from ringex.client.connection import ClientError, Number, connect
from ringex.units import plain


def admin_transfer(url: str, admin_key: str, op: str, account: int, asset: str,
                   amount: Number, timeout: float = 10.0) -> dict:
    """Deposit or withdraw through a running exchange (synchronous; for the CLI).

    Returns the reply message (``{"type": "deposit", ...}``); raises ClientError on a
    reject, an error or a timeout, and OSError when nothing listens at ``url``."""
    if op not in ("deposit", "withdraw"):
        raise ValueError(f"op must be 'deposit' or 'withdraw', not {op!r}")

    async def run() -> dict:
        c = await connect(url, admin_key, timeout=timeout)
        try:
            res = await c.request({"op": op, "account": account, "asset": asset,
                                   "amount": plain(amount)}, raw=True)
        finally:
            await c.close()
        if res.get("type") == "reject":
            raise ClientError(res["code"], res.get("message", ""), res)
        return res

    return asyncio.run(run())
