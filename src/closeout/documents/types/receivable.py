"""Receivable (应收): lines are invoice items against a source sales order amount."""

from closeout.documents.models import DocType
from closeout.documents.types import DocTypeSpec
from closeout.documents.types.settlement import settlement_spec

SPEC: DocTypeSpec = settlement_spec(DocType.RECEIVABLE, "应收", "Receivable")
