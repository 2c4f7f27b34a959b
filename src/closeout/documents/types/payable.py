"""Payable (应付): lines are supplier invoice items against a source purchase order amount."""

from closeout.documents.models import DocType
from closeout.documents.types import DocTypeSpec
from closeout.documents.types.settlement import settlement_spec

SPEC: DocTypeSpec = settlement_spec(DocType.PAYABLE, "应付", "Payable")
