"""Issue 12, section 1: what a user over one department could read of another before (each test
failed then). Department A holds the caller's grants; department B's documents must not show,
and where a target is named, must answer exactly like a missing one."""

import io
import json
import zipfile
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from closeout.access.models import Role
from closeout.alerts.models import AlertCode, AlertRule
from closeout.alerts.services import alerts_run
from closeout.api.services import api_token_create
from closeout.approvals.models import ApprovalRoute
from closeout.batches.imports import import_validate
from closeout.batches.models import BatchAction
from closeout.batches.selectors import batch_results
from closeout.batches.services import batch_create
from closeout.core.errors import InvalidInput, NotFound, PermissionDenied
from closeout.documents.models import Document, EventKind
from closeout.notifications.models import Notification
from closeout.reports.diagnostics import diagnostics_run, report_viewers
from closeout.reports.verification import batch_verify
from tests.api.conftest import Api, download, error_of
from tests.approvals.conftest import make_route, submit_close
from tests.batches.test_imports import csv_bytes
from tests.factories import PO, Org, complete, make_document, org_tree, post, user_with_role
from tests.web.pages import same_page

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.CLOSEOUT_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = ""
    settings.CLOSEOUT_API_RATE_PER_MINUTE = 100_000
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def org() -> Org:
    return org_tree()


def api(user: User) -> Api:
    return Api(Client(), api_token_create(actor=None, user=user, name="t").raw, user)


def signed_in(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def two_units(org: Org) -> tuple[Document, Document]:
    """A ready purchase order in A and one in B (numbers say where)."""
    return (
        complete(make_document(PO, org.dept_a, number="PO-A-1")),
        complete(make_document(PO, org.dept_b, number="PO-B-1")),
    )


# --- batches -------------------------------------------------------------------------------


def test_a_batch_holds_only_documents_the_creator_may_close(org: Org) -> None:
    mine, theirs = two_units(org)
    buyer = user_with_role("buyer-a", "operator", org.dept_a)
    everything = batch_create(
        actor=buyer, action=BatchAction.CLOSE, doc_type=PO, queue_filter={}, reason_code="completed"
    )
    assert everything.total == 1
    assert list(batch_results(everything).values_list("label", flat=True)) == [mine.number]
    # A number of B answers exactly like a number that does not exist.
    messages = []
    for number in (theirs.number, "PO-NONE-1"):
        with pytest.raises(InvalidInput) as refused:
            batch_create(
                actor=buyer,
                action=BatchAction.CLOSE,
                doc_type=PO,
                numbers=[mine.number, number],
                reason_code="completed",
            )
        messages.append((refused.value.message.replace(number, "N"), refused.value.details))
    assert messages[0][0] == messages[1][0] == "no purchase_order numbered N"


def test_batch_approval_answers_another_units_request_like_a_missing_one(org: Org) -> None:
    make_route("scope", steps=(("supervisor", "主管"),))
    requester = user_with_role("req", "operator", org.company)
    theirs = submit_close(requester, complete(make_document(PO, org.dept_b)))
    boss_a = user_with_role("boss-a", "supervisor", org.dept_a)
    answers = []
    for rid in (theirs.pk, 999_999):
        with pytest.raises(InvalidInput) as refused:
            batch_create(actor=boss_a, action=BatchAction.APPROVE, request_ids=[rid])
        answers.append(refused.value.message.replace(str(rid), "N"))
    assert answers == ["no close request #N", "no close request #N"]


def test_sweep_dry_run_counts_and_names_only_what_the_caller_may_view(org: Org) -> None:
    for unit, tag in ((org.dept_a, "A"), (org.dept_b, "B")):
        for n in range(2):
            post(make_document(PO, unit, number=f"SW-{tag}-{n}"), EventKind.RECEIPT, 1, 5)
    buyer = api(user_with_role("buyer-a", "operator", org.dept_a))
    body = buyer.post("/api/sweep/dry-run", {}).json()
    assert body["exception_queue"] == 2 and body["examined"] == 2
    assert sorted(body["exception_sample"]) == ["purchase_order SW-A-0", "purchase_order SW-A-1"]
    everyone = api(user_with_role("sup", "supervisor", org.company)).post("/api/sweep/dry-run", {})
    assert everyone.json()["exception_queue"] == 4


# --- audit log and evidence packs ----------------------------------------------------------


def test_a_unit_auditor_reads_the_events_of_their_units_documents_only(org: Org) -> None:
    mine, theirs = two_units(org)
    user_with_role("someone", "operator", org.company)  # a grant event: configuration
    scoped = user_with_role("aud-a", "auditor", org.dept_a)
    export = b"".join(api(scoped).get("/api/audit/export").streaming_content).decode()
    rows = [json.loads(line) for line in export.splitlines()]
    assert rows and {(r["object_type"], r["object_id"]) for r in rows} == {
        ("document", str(mine.pk))
    }
    assert theirs.number not in export
    page = signed_in(scoped).get(reverse("web:audit")).content.decode()
    assert mine.number in page and theirs.number not in page
    csv_text = download(signed_in(scoped).get(reverse("web:audit") + "?format=csv")).decode()
    assert mine.number in csv_text and theirs.number not in csv_text
    # The company-wide auditor still reads everything; both may verify the chain.
    wide = user_with_role("aud", "auditor", org.company)
    everything = b"".join(api(wide).get("/api/audit/export").streaming_content).decode()
    assert theirs.number in everything and '"object_type": "grant"' in everything
    assert api(scoped).get("/api/audit/verify").json()["intact"] is True


def test_evidence_packs_are_for_company_wide_auditors_only(org: Org) -> None:
    two_units(org)
    scoped = user_with_role("aud-a", "auditor", org.dept_a)
    refused = api(scoped).get("/api/archive/packs", period="2026-01")
    assert refused.status_code == 403
    assert "whole company" in error_of(refused)["message"]
    page = signed_in(scoped).post(reverse("web:archive_export"), {"period": "2026-01"})
    assert page.status_code == 403 and b"whole company" in page.content
    wide = api(user_with_role("aud", "auditor", org.company))
    pack = wide.get("/api/archive/packs", period="2026-01")
    assert pack.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(b"".join(pack.streaming_content))).namelist()


# --- reports: verification and diagnostics -------------------------------------------------


def test_another_units_batch_verification_answers_like_a_missing_batch(org: Org) -> None:
    _mine, theirs = two_units(org)
    owner = user_with_role("buyer-b", "operator", org.dept_b)
    job = batch_create(
        actor=owner,
        action=BatchAction.CLOSE,
        doc_type=PO,
        numbers=[theirs.number],
        reason_code="completed",
    )
    batch_verify(job_id=job.pk, actor=None)
    analyst = user_with_role("ana-a", "analyst", org.dept_a)
    caller = api(analyst)
    for method in ("get", "post"):
        hidden = getattr(caller, method)(f"/api/batches/{job.pk}/verification")
        missing = getattr(caller, method)("/api/batches/999999/verification")
        assert hidden.status_code == missing.status_code == 404
        assert error_of(hidden)["message"].replace(str(job.pk), "N") == error_of(missing)[
            "message"
        ].replace("999999", "N")
    with pytest.raises(NotFound):
        batch_verify(job_id=job.pk, actor=analyst)
    assert signed_in(analyst).get(reverse("web:batch_verification", args=[job.pk])).status_code == (
        404
    )
    wide = api(user_with_role("ana", "analyst", org.company))
    assert wide.get(f"/api/batches/{job.pk}/verification").status_code == 200


def test_diagnostic_counts_follow_the_viewers_scope(org: Org) -> None:
    for unit in (org.dept_a, org.dept_b, org.dept_b):
        post(make_document(PO, unit), EventKind.RECEIPT, 1, 15)  # over-received
    wide_user = user_with_role("ana", "analyst", org.company)
    diagnostics_run(actor=wide_user)
    scoped = user_with_role("ana-a", "analyst", org.dept_a)
    body = api(scoped).get("/api/diagnostics").json()
    wide = api(wide_user).get("/api/diagnostics").json()
    scoped_counts = {c["code"]: c["count"] for c in body["checks"]}
    wide_counts = {c["code"]: c["count"] for c in wide["checks"]}
    over = [code for code, n in wide_counts.items() if n]
    assert over, wide_counts
    for code in over:
        rows = api(scoped).get(f"/api/diagnostics/{code}").json()["items"]
        assert scoped_counts[code] == len(rows) < wide_counts[code]
    assert body["last_run"] is None and wide["last_run"] is not None
    # A stored run counts the whole company: not for a viewer of one unit.
    refused = api(scoped).post("/api/diagnostics/run", {})
    assert refused.status_code == 403 and "whole company" in error_of(refused)["message"]
    page = signed_in(scoped).get(reverse("web:diagnostics"))
    assert page.status_code == 200 and b"run-now" not in page.content
    assert signed_in(scoped).post(reverse("web:diagnostics")).status_code == 403
    assert [u.username for u in report_viewers()] == ["ana"]


# --- pages, events, imports, upserts -------------------------------------------------------


def test_pages_of_another_units_document_and_request_are_404_like_missing_ones(org: Org) -> None:
    make_route("scope", steps=(("supervisor", "主管"),))
    _mine, theirs = two_units(org)
    request = submit_close(user_with_role("req", "operator", org.company), theirs)
    ApprovalRoute.objects.update(active=False)
    client = signed_in(user_with_role("buyer-a", "operator", org.dept_a))
    for name, pk in (
        ("web:document", theirs.pk),
        ("web:close", theirs.pk),
        ("web:request", request.pk),
    ):
        hidden, missing = (
            client.get(reverse(name, args=[pk])),
            client.get(reverse(name, args=[9999])),
        )
        assert hidden.status_code == missing.status_code == 404, name
        assert same_page(hidden.content) == same_page(missing.content)
        assert b"D-B" not in hidden.content


def test_events_for_another_units_document_are_rejected_like_a_missing_one(org: Org) -> None:
    _mine, theirs = two_units(org)
    erp = api(user_with_role("erp-a", "integration", org.dept_a))
    results = []
    for number in (theirs.number, "PO-NONE"):
        event = {
            "doc_type": PO,
            "number": number,
            "kind": "invoice",
            "external_id": "EV-X",
            "line_no": 1,
        }
        result = erp.post("/api/events", {"events": [event]}).json()["results"][0]
        results.append((result["code"], result["reason"].replace(number, "N")))
    assert results[0] == results[1] and results[0][0] == "not_found"


def test_an_import_reports_another_units_document_as_unknown(org: Org) -> None:
    _mine, theirs = two_units(org)
    buyer = user_with_role("buyer-a", "operator", org.dept_a)
    reports = []
    for number in (theirs.number, "PO-NONE"):
        content = csv_bytes([[PO, number, "", "close", "completed", "", ""]])
        imported = import_validate(actor=buyer, upload=io.BytesIO(content), file_name="x.csv")
        row = imported.report["rows"][0]
        reports.append(json.dumps(row["e"]).replace(number, "N"))
    assert reports[0] == reports[1] and "unknown document" in reports[0]


def test_an_upsert_cannot_change_another_units_document(org: Org) -> None:
    _mine, theirs = two_units(org)
    erp = api(user_with_role("erp-a", "integration", org.dept_a))
    body = {
        "org_unit": org.dept_a.code,
        "document_date": "2026-01-10",
        "lines": [{"line_no": 1, "planned_qty": "99", "unit_price": "1"}],
    }
    refused = erp.put(f"/api/documents/{PO}/{theirs.number}", body)
    assert refused.status_code == 403 and "D-B" not in refused.content.decode()
    theirs.refresh_from_db()
    assert theirs.org_unit_id == org.dept_b.pk and theirs.lines.get().planned_qty == 10


# --- configuration that reaches every unit --------------------------------------------------


def test_company_wide_configuration_needs_a_company_wide_grant(org: Org) -> None:
    admin_a = api(user_with_role("adm-a", "admin", org.dept_a))
    assert admin_a.get("/api/webhooks").status_code == 403
    hook = {"name": "x", "url": "https://hooks.example.invalid/", "events": []}
    assert admin_a.post("/api/webhooks", hook).status_code == 403
    assert admin_a.patch(f"/api/policies/{PO}", {"grace_days": 1}).status_code == 403
    assert admin_a.patch(
        f"/api/policies/{PO}", {"org_unit": "D-A", "grace_days": 1}
    ).status_code == (200)
    other = user_with_role("wide-admin", "admin", org.company)
    with pytest.raises(PermissionDenied, match="whole company"):
        api_token_create(actor=admin_a.user, user=other)


def test_alert_digests_name_only_documents_the_recipient_may_view(org: Org) -> None:
    rule = AlertRule.objects.get(code=AlertCode.STALE)
    rule.days, rule.active, rule.recipients_role = 0, True, "supervisor"
    rule.save()
    AlertRule.objects.exclude(pk=rule.pk).update(active=False)
    make_document(PO, org.dept_a, number="ST-A-1")
    make_document(PO, org.dept_b, number="ST-B-1")
    boss_a = user_with_role("boss-a", "supervisor", org.dept_a)
    boss = user_with_role("boss", "supervisor", org.company)
    alerts_run()
    mine = Notification.objects.get(user=boss_a, kind="alert_digest")
    assert "ST-A-1" in mine.body and "ST-B-1" not in mine.body
    assert "ST-B-1" in Notification.objects.get(user=boss, kind="alert_digest").body


def test_the_analyst_role_reads_reports_only() -> None:
    assert Role.objects.get(code="analyst").all_permissions() == {"document.view", "report.view"}
