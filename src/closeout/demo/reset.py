"""`closeout demo --reset`: remove every closeout record and restart the audit chain."""

from collections.abc import Iterable

from django.apps import apps
from django.db import connection, models
from django.db.models import ProtectedError

from closeout.access.models import Grant
from closeout.approvals.models import AccountingPeriod
from closeout.audit.models import AuditEvent
from closeout.audit.services import audit_chain_restart, sqlite_audit_guards_lifted
from closeout.closing.models import SweepRun
from closeout.core.errors import DomainError
from closeout.core.models import Company, Item, OrgUnit, Partner
from closeout.demo.org import demo_users_qs
from closeout.documents.models import (
    BusinessEvent,
    Document,
    Line,
)

# --- reset -----------------------------------------------------------------------------------

# Transactional data: these tables and every table that refers to them are emptied.
_RESET_ROOTS: tuple[type[models.Model], ...] = (
    Document,
    Line,
    BusinessEvent,
    SweepRun,
    Grant,
    AuditEvent,
)
# Activity records of other modules (looked up by label: a module may not be installed).
_RESET_ROOT_LABELS = (
    "approvals.CloseRequest",
    "batches.BatchJob",
    "notifications.Notification",
    "notifications.WebhookDelivery",
    "closing.ArchiveRun",
)


def _reset_roots() -> list[type[models.Model]]:
    roots = list(_RESET_ROOTS)
    for label in _RESET_ROOT_LABELS:
        try:
            roots.append(apps.get_model(label))
        except LookupError:
            continue
    return roots


def _referring_closure(roots: Iterable[type[models.Model]]) -> list[type[models.Model]]:
    """The roots plus every installed model with a foreign key into the set (transitively),
    ordered so that a model comes before the models it refers to."""
    chosen: list[type[models.Model]] = list(roots)
    every = apps.get_models(include_auto_created=True)
    changed = True
    while changed:
        changed = False
        for model in every:
            if model in chosen:
                continue
            if any(
                f.is_relation and f.related_model in chosen and not f.auto_created
                for f in model._meta.concrete_fields
            ):
                chosen.append(model)
                changed = True
    ordered: list[type[models.Model]] = []

    def visit(model: type[models.Model], path: tuple[type[models.Model], ...]) -> None:
        if model in ordered or model in path:
            return
        for other in chosen:
            if other is not model and any(
                f.is_relation and f.related_model is model for f in other._meta.concrete_fields
            ):
                visit(other, (*path, model))
        ordered.append(model)

    for model in chosen:
        visit(model, ())
    return ordered


def demo_reset() -> None:
    """Remove every closeout record and restart the audit chain at the genesis hash: documents,
    events, requests, batches, notifications, grants, audit events, sweep runs, demo users,
    organisation units with the settings scoped to them (the demo's approval routes among them),
    accounting periods, partners and items. Keeps the configuration that is not tied to an
    organisation unit: roles, reason codes, default close policies. Call inside a transaction
    (`demo_load(reset=True)` does)."""
    tables = [m._meta.db_table for m in _referring_closure(_reset_roots())]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The audit table refuses DELETE (trigger); TRUNCATE is a separate privilege. Deferred
            # foreign-key checks pending in this transaction would block TRUNCATE: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                f"TRUNCATE {', '.join(quote(t) for t in tables)} RESTART IDENTITY CASCADE"
            )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            with sqlite_audit_guards_lifted():
                for table in tables:
                    cursor.execute(f"DELETE FROM {quote(table)}")  # noqa: S608 (model table names)
    audit_chain_restart()
    try:
        AccountingPeriod.objects.all().delete()  # before the companies they belong to
        # Settings of one company (its reason codes, alert rules, webhook endpoints) go with it.
        for model in apps.get_models():
            for f in model._meta.concrete_fields:
                if f.is_relation and f.related_model is Company and f.null:
                    model._base_manager.filter(**{f"{f.name}__isnull": False}).delete()
        # Settings scoped to an organisation unit (close policies, approval routes…) go with it.
        for model in apps.get_models():
            for f in model._meta.concrete_fields:
                if f.is_relation and f.related_model is OrgUnit and model is not OrgUnit:
                    model._base_manager.filter(**{f"{f.name}__isnull": False}).delete()
        demo_users_qs().delete()
        AccountingPeriod.objects.all().delete()
        Partner.objects.all().delete()
        Item.objects.all().delete()
        # Children before parents (the parent link protects).
        for unit in sorted(OrgUnit.objects.all(), key=lambda u: -len(u.path)):
            unit.delete()
    except ProtectedError as exc:
        blocked = sorted({f"{o._meta.label} {o}" for o in list(exc.protected_objects)[:3]})
        raise DomainError(
            "demo reset: some records still refer to the organisation or master data: "
            + "; ".join(blocked),
            details={"blocked_by": blocked},
        ) from exc
