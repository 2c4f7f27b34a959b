"""The configuration pages and hold/release in the workbench (issue 17 items 9-11), through
Django's test client: thin pages over the services, refused without the permission, the menu
entry only for those who hold it, a what-if shown before anything is saved."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from closeout.access.models import Grant
from closeout.approvals.models import AccountingPeriod, ApprovalRoute
from closeout.audit.models import AuditAction, AuditEvent
from closeout.closing.models import ClosePolicy, ReasonCode
from closeout.documents.models import CloseState, Document, EventKind, EventStatus
from tests.factories import PO, Org, make_document, post, ready_document, user_with_role
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(org: Org) -> User:
    return user_with_role("cfg", "admin", org.company)


def test_menu_entry_only_with_the_permission(admin: User, operator: User) -> None:
    assert 'id="nav-config"' in signed_in(admin).get("/config/").content.decode()
    page = signed_in(operator).get("/queue/purchase_order/").content.decode()
    assert 'id="nav-config"' not in page
    assert signed_in(operator).get("/config/").status_code == 403
    for url in ("/config/policies/", "/config/reasons/", "/config/grants/", "/config/webhooks/"):
        assert signed_in(operator).get(url).status_code == 403, url


def test_policy_page_whatif_then_save(admin: User, org: Org) -> None:
    short = make_document(PO, org.dept_a, [(100, 3)])
    post(short, EventKind.RECEIPT, 1, 95)
    post(short, EventKind.INVOICE, 1, 95, 285)
    post(short, EventKind.PAYMENT, 1, 0, 285)
    client = signed_in(admin, "zh-hans")
    page = client.get("/config/policies/?doc_type=purchase_order&org_unit=")
    assert page.status_code == 200
    form = {k: v for k, v in page.context["form"].initial.items()}
    form = {k: ("on" if v is True else v) for k, v in form.items() if v is not False}
    form["under_qty_pct"] = "10"
    answer = client.post(
        "/config/policies/?doc_type=purchase_order&org_unit=", {**form, "op": "whatif"}
    )
    text = answer.content.decode()
    assert answer.status_code == 200 and 'id="whatif"' in text
    assert short.number in text and "例外" in text
    assert ClosePolicy.objects.get(doc_type=PO, org_unit=None).under_qty_pct != 10
    saved = client.post(
        "/config/policies/?doc_type=purchase_order&org_unit=", {**form, "op": "save"}
    )
    assert saved.status_code == 302
    assert ClosePolicy.objects.get(doc_type=PO, org_unit=None).under_qty_pct == 10
    event = AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED).latest("seq")
    assert event.data["under_qty_pct"]["after"] == "10"


def test_reason_and_period_pages(admin: User) -> None:
    client = signed_in(admin)
    answer = client.post(
        "/config/reasons/",
        {
            "code": "web_reason",
            "action": "close",
            "label_zh": "网页",
            "label_en": "Web",
            "active": "on",
        },
    )
    assert answer.status_code == 302 and ReasonCode.objects.filter(code="web_reason").exists()
    refused = client.post(
        "/config/reasons/",
        {"code": "bad code", "action": "close", "label_zh": "x", "label_en": "x"},
    )
    assert refused.status_code == 400
    answer = client.post(
        "/config/periods/",
        {"op": "create", "name": "2025-01", "start": "2025-01-01", "end": "2025-01-31"},
    )
    assert answer.status_code == 302
    period = AccountingPeriod.objects.get(name="2025-01")
    client.post("/config/periods/", {"op": "close", "period": period.pk})
    period.refresh_from_db()
    assert period.closed
    refused = client.post("/config/periods/", {"op": "open", "period": period.pk, "reason": ""})
    assert refused.status_code == 400


def test_route_grant_and_webhook_pages(admin: User, org: Org) -> None:
    client = signed_in(admin)
    answer = client.post(
        "/config/routes/new/",
        {
            "name": "Web route",
            "action": "close",
            "doc_type": "",
            "org_unit": org.dept_a.code,
            "condition": "any",
            "priority": "10",
            "active": "on",
            "step1_role": "supervisor",
            "step1_name": "主管审批",
            "step1_sla": "8",
        },
    )
    assert answer.status_code == 302
    route = ApprovalRoute.objects.get(name="Web route")
    assert route.steps.get().role.code == "supervisor"
    target = user_with_role("newbie", None)
    answer = client.post(
        "/config/grants/",
        {
            "op": "grant",
            "username": "newbie",
            "role": "auditor",
            "org_unit": org.dept_a.code,
            "valid_until": "2999-01-01",
            "reason": "audit week",
        },
    )
    assert answer.status_code == 302
    assert Grant.objects.get(user_id=target.pk).valid_until is not None
    refused = client.post(
        "/config/grants/",
        {"op": "grant", "username": "cfg", "role": "auditor", "org_unit": org.company.code},
    )
    assert refused.status_code == 400 and "separation of duties" in refused.content.decode()
    answer = client.post(
        "/config/webhooks/",
        {"op": "create", "name": "erp", "url": "http://93.184.216.34/hook", "events": ""},
    )
    assert answer.status_code in (302, 400)


def test_hold_and_release_lines_and_document(org: Org, operator: User) -> None:
    auditor = user_with_role("aud", "auditor", org.company)
    document = ready_document(PO, org.dept_a, ((10, 5), (4, 2)))
    client = signed_in(operator, "zh-hans")
    page = client.get(f"/documents/{document.pk}/").content.decode()
    assert 'id="hold-button"' in page
    assert client.post(f"/documents/{document.pk}/hold/", {"reason": ""}).status_code == 400
    answer = client.post(f"/documents/{document.pk}/hold/", {"reason": "供应商争议", "lines": [2]})
    assert answer.status_code == 302
    assert document.lines.get(line_no=2).close_state == CloseState.ON_HOLD
    page = client.get(f"/documents/{document.pk}/").content.decode()
    assert 'id="hold-info"' in page and "供应商争议" in page and "op" in page
    assert 'id="release-button"' in page
    assert (
        'id="release-button"'
        not in signed_in(auditor).get(f"/documents/{document.pk}/").content.decode()
    )
    assert signed_in(auditor).post(f"/documents/{document.pk}/release/", {}).status_code == 403
    client.post(f"/documents/{document.pk}/release/", {})
    assert document.lines.get(line_no=2).close_state == CloseState.OPEN
    client.post(f"/documents/{document.pk}/hold/", {"reason": "整单冻结"})
    document.refresh_from_db()
    assert document.close_state == CloseState.ON_HOLD
    post(document, EventKind.RECEIPT, 1, 1, days_ago=1)
    page = client.get(f"/documents/{document.pk}/").content.decode()
    assert "整单冻结" in page
    assert document.events.filter(status=EventStatus.QUARANTINED).count() == 1
    client.post(f"/documents/{document.pk}/release/", {"reason": "ok"})
    document.refresh_from_db()
    assert document.close_state == CloseState.OPEN
    assert (
        not Document.objects.get(pk=document.pk)
        .events.filter(status=EventStatus.QUARANTINED)
        .exists()
    )
    assert Decimal(0) <= document.lines.get(line_no=1).fulfilled_qty
