"""No side door through the Django admin: every registered admin page is read-only, for a
superuser too. Generated from admin.site._registry, so a new admin page is covered the day it
is registered; configuration changes only through the services, which check permissions and
write the audit event."""

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.db import models
from django.forms.models import model_to_dict
from django.test import Client, RequestFactory
from django.urls import reverse

from closeout.access.models import Grant, Role
from closeout.alerts.models import AlertRule
from closeout.api.services import api_token_create
from closeout.approvals.models import AccountingPeriod, ApprovalRoute
from closeout.audit.models import AuditEvent
from closeout.closing.models import ClosePolicy, ReasonCode
from closeout.notifications.models import WebhookEndpoint
from closeout.notifications.services import preference_set
from closeout.notifications.webhook_endpoints import webhook_endpoint_create
from tests.approvals.conftest import make_route
from tests.factories import PO, Org, ready_document, user_with_role

pytestmark = pytest.mark.django_db

# Configuration whose admin page must exist and must have a row to attack in this test.
CONFIGURATION = (
    Grant,
    Role,
    ClosePolicy,
    ReasonCode,
    ApprovalRoute,
    AccountingPeriod,
    WebhookEndpoint,
    AlertRule,
    User,
)


@pytest.fixture
def superuser_client(org: Org) -> Client:
    """A superuser signed in to the admin, and at least one row of every configuration."""
    manager = user_with_role("cfg-admin", "admin", org.company)
    user_with_role("cfg-buyer", "operator", org.dept_a)
    make_route("exceptions", steps=[("supervisor", "主管")])
    AccountingPeriod.objects.create(name="2026-01", start=date(2026, 1, 1), end=date(2026, 1, 31))
    webhook_endpoint_create(
        actor=manager, name="erp", url="https://erp.example.com/hook", events=[]
    )
    preference_set(actor=manager, language="en", email_enabled=False)
    api_token_create(actor=None, user=manager, name="erp")
    ready_document(PO, org.dept_a)
    root = User.objects.create_superuser("root", password=None)
    client = Client()
    client.force_login(root)
    return client


def _form_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return [getattr(v, "pk", v) for v in value] or json.dumps([])
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date | Decimal):
        return str(value)
    return getattr(value, "pk", value)


def _hostile_form(obj: models.Model) -> dict[str, Any]:
    """The object's own values, as an edit form would post them, with the changes an attacker
    wants: a far grant, every permission, an extra role."""
    data = {name: _form_value(value) for name, value in model_to_dict(obj).items()}
    data.update({"valid_until_0": "2199-12-31", "valid_until_1": "00:00:00"})
    if isinstance(obj, Grant):
        data["valid_until"] = "2199-12-31 00:00:00"
    if isinstance(obj, Role):
        data["permissions"] = json.dumps(["close.direct", "access.manage"])
    if isinstance(obj, User):
        data.update({"is_superuser": "on", "is_staff": "on", "password": "x"})
    data["_save"] = "Save"
    return data


def _snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every model that has an admin page (and the audit log)."""
    tables = {model._meta.label: model for model in admin.site._registry}
    tables[AuditEvent._meta.label] = AuditEvent
    return {
        label: list(model._default_manager.order_by("pk").values())
        for label, model in sorted(tables.items())
    }


def _url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_configuration_has_a_read_only_admin_page() -> None:
    missing = [m._meta.label for m in CONFIGURATION if m not in admin.site._registry]
    assert missing == []


def test_no_admin_permission_to_add_change_or_delete_even_for_a_superuser(db: None) -> None:
    root = User.objects.create_superuser("root-perm", password=None)
    request = RequestFactory().get("/admin/")
    request.user = root
    writable = []
    for model, model_admin in admin.site._registry.items():
        sample = model._default_manager.first()
        for name, allowed in (
            ("add", model_admin.has_add_permission(request)),
            ("change", model_admin.has_change_permission(request, sample)),
            ("delete", model_admin.has_delete_permission(request, sample)),
        ):
            if allowed:
                writable.append(f"{model._meta.label}: {name}")
        writable += [
            f"{model._meta.label}: inline {type(inline).__name__}"
            for inline in model_admin.get_inline_instances(request, sample)
            if inline.has_add_permission(request, sample)
            or inline.has_change_permission(request, sample)
            or inline.has_delete_permission(request, sample)
        ]
        assert model_admin.has_view_permission(request, sample), model._meta.label
    assert writable == []


def test_no_admin_post_by_a_superuser_changes_a_row(superuser_client: Client) -> None:
    for model in CONFIGURATION:
        assert model._default_manager.exists(), f"no {model._meta.label} row to attack"
    before = _snapshot()
    attempted = 0
    for model in admin.site._registry:
        client = superuser_client
        sample = model._default_manager.order_by("pk").first()
        form = _hostile_form(sample) if sample is not None else {"_save": "Save"}
        assert client.post(_url(model, "add"), form).status_code == 403, model
        attempted += 1
        if sample is None:
            continue
        pk = sample.pk
        assert client.post(_url(model, "change", pk), form).status_code == 403, model
        assert client.post(_url(model, "delete", pk), {"post": "yes"}).status_code == 403, model
        # The bulk delete action of the list page is not offered: nothing is deleted.
        response = client.post(
            _url(model, "changelist"),
            {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
        )
        assert response.status_code in (200, 302), model
        attempted += 3
    root = User.objects.get(username="root")
    password_url = reverse("admin:auth_user_password_change", args=[root.pk])
    response = superuser_client.post(
        password_url, {"password1": "a-new-password-1", "password2": "a-new-password-1"}
    )
    assert response.status_code == 403
    assert attempted >= 4 * len(CONFIGURATION)
    assert _snapshot() == before
    assert not LogEntry.objects.exists()


def test_the_admin_stays_for_reading_without_the_webhook_secret(superuser_client: Client) -> None:
    endpoint = WebhookEndpoint.objects.get(name="erp")
    for model in admin.site._registry:
        assert superuser_client.get(_url(model, "changelist")).status_code == 200, model
        sample = model._default_manager.order_by("pk").first()
        if sample is not None:
            page = superuser_client.get(_url(model, "change", sample.pk))
            assert page.status_code == 200, model
    for page in (
        superuser_client.get(_url(WebhookEndpoint, "changelist")),
        superuser_client.get(_url(WebhookEndpoint, "change", endpoint.pk)),
    ):
        text = page.content.decode()
        assert "erp.example.com" in text
        assert endpoint.secret not in text and endpoint.secret[:6] not in text
        assert "••••" in text
