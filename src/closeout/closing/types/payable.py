"""Payable (应付): its close rules (closeout.closing.types.settlement)."""

from closeout.closing.types import CloseSpec
from closeout.closing.types.settlement import settlement_close

CLOSE: CloseSpec = settlement_close("付款", "payment")
