"""The kernels' plain-int constants must agree with the record layout's enums."""
from ringex.core import codes
from ringex.ring import layout as L

PREFIXES = [(L.CommandKind, "CMD"), (L.EventKind, "EV"), (L.RejectCode, "E"),
            (L.CancelReason, "R"), (L.SelfTradePrevention, "STP"), (L.TimeInForce, "TIF"),
            (L.OrderType, "OT"), (L.Side, "SIDE")]


def test_should_mirror_every_enum_member():
    for enum, prefix in PREFIXES:
        for member in enum:
            assert getattr(codes, f"{prefix}_{member.name}") == int(member)


def test_should_mirror_flag_constants():
    assert codes.ALL_SYMBOLS == L.ALL_SYMBOLS
    assert codes.CMD_POST_ONLY == L.CMD_POST_ONLY
    assert codes.CMD_DISCONNECT == L.CMD_DISCONNECT
    assert codes.INFO_SELL == L.INFO_SELL and codes.INFO_MAKER == L.INFO_MAKER
