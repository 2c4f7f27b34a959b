"""Receivable (应收): its close rules (closeout.closing.types.settlement)."""

from closeout.closing.types import CloseSpec
from closeout.closing.types.settlement import settlement_close

CLOSE: CloseSpec = settlement_close("收款", "collection")
