"""The ``orders`` channel on one gateway: which connections stream which account.

A connection subscribed to ``orders`` gets every order event of its account (ack, fill,
cancelled, modified), whichever connection or gateway placed the order. The engine
copies an account's events to a gateway only while that gateway asked for them (an
ACCOUNT_STREAM command, ``records.account_stream``): one such command when the first of
the account's connections here subscribes, one when the last one leaves.
"""
from __future__ import annotations

from ringex.gateway.connection import Connection


class AccountStreams:
    def __init__(self) -> None:
        # account -> its streaming connections here (read by the pump for every event:
        # an empty dict, the usual case, costs it one truth test)
        self.by_account: dict[int, set[Connection]] = {}

    def add(self, conn: Connection, account: int) -> bool:
        """Stream ``account`` to ``conn``; True when the gateway must start asking."""
        conns = self.by_account.setdefault(account, set())
        first = not conns
        conns.add(conn)
        return first

    def remove(self, conn: Connection, account: int) -> bool:
        """Stop streaming to ``conn``; True when the gateway must stop asking."""
        conns = self.by_account.get(account)
        if conns is None or conn not in conns:
            return False
        conns.discard(conn)
        if conns:
            return False
        del self.by_account[account]
        return True
