"""Typed errors raised at ringex's edges (config, CLI, rings, storage).

    RingexError
    ├── ConfigError        bad market configuration (message names the field)
    │   └── InexactAmount  a decimal that is not a whole number of its tick, lot or unit
    ├── RingError          shared-memory ring misuse
    │   └── RingNotFound   attaching to a ring that does not exist
    ├── StorageError       database or journal problem
    └── Fenced             another writer appended to the replicated journal

The hot path never raises: kernels return RejectCode values instead.
"""


class RingexError(Exception):
    """Base of every error ringex raises on purpose."""


class ConfigError(RingexError, ValueError):
    pass


class InexactAmount(ConfigError):
    """A decimal that is not a whole number of its step (tick, lot, minor unit)."""


class RingError(RingexError):
    pass


class RingNotFound(RingError, FileNotFoundError):
    def __init__(self, name: str):
        super().__init__(f"no shared-memory ring named {name!r} (is the creator running?)")
        self.name = name


class StorageError(RingexError):
    pass


class CommandRejected(RingexError):
    """A convenience call (OrderService.deposit, ...) was rejected by the engine."""

    def __init__(self, code):
        super().__init__(f"rejected: {getattr(code, 'name', code)}")
        self.code = code


class Fenced(RingexError):
    """Another writer appended to the replicated journal: this primary is deposed and must
    stop (docs/cluster.md, "Fencing")."""
