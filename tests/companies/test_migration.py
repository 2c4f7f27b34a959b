"""An installation of one company migrates to companies with no change in behaviour: its root
unit becomes the company (with the installation's currency), holding every document."""

from datetime import date

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from closeout.core.models import Company
from closeout.documents.models import Document
from closeout.documents.services import document_get

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

BEFORE = [("core", "0002_counter"), ("documents", "0006_document_reopened_at")]


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def test_a_single_company_database_becomes_one_company() -> None:
    old = _migrate(BEFORE).loader.project_state(BEFORE).apps
    unit_model = old.get_model("core", "OrgUnit")
    root = unit_model.objects.create(code="OLD-HQ", name="总公司", path="")
    root.path = f"/{root.pk}/"
    root.save()
    dept = unit_model.objects.create(code="OLD-D", name="部门", parent=root, path="")
    dept.path = f"{root.path}{dept.pk}/"
    dept.save()
    doc_model = old.get_model("documents", "Document")
    for number, unit in (("P-OLD-1", root), ("P-OLD-2", dept)):
        doc_model.objects.create(
            doc_type="purchase_order", number=number, org_unit=unit, document_date=date(2026, 1, 5)
        )

    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())

    company = Company.objects.get(unit__code="OLD-HQ")
    assert company.base_currency == settings.CLOSEOUT_COMPANY_CURRENCY
    assert company.time_zone == settings.TIME_ZONE
    assert not Company.objects.filter(unit__code="OLD-D").exists()
    assert set(Document.objects.values_list("company_id", flat=True)) == {company.pk}
    # Looked up as before, with no company named.
    assert document_get("purchase_order", "P-OLD-2").org_unit.code == "OLD-D"
    first = document_get("purchase_order", "P-OLD-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Document.objects.create(
            doc_type="purchase_order",
            number="P-OLD-1",
            company=company,
            org_unit=first.org_unit,
            document_date=first.document_date,
        )
