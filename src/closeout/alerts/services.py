"""Running the alert rules: one stored result per rule and one digest per recipient, never one
message per document."""

from collections import Counter
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from closeout.access.selectors import users_with_role
from closeout.alerts.models import AlertRule, AlertRun
from closeout.alerts.selectors import alert_items, alert_items_visible_to
from closeout.core.notice_kinds import NoticeKind
from closeout.notifications.services import notify


def alerts_run(*, now: datetime | None = None) -> list[AlertRun]:
    moment = now or timezone.now()
    runs: list[AlertRun] = []
    for rule in AlertRule.objects.filter(active=True):
        items = alert_items(rule, now=moment)
        with transaction.atomic():
            run = AlertRun.objects.create(
                rule=rule,
                ran_at=moment,
                count=len(items),
                by_type=dict(Counter(i.doc_type or i.kind for i in items)),
                sample=[{"label": i.label, "why": i.why, "link": i.link} for i in items[:50]],
            )
            recipients = (
                users_with_role(rule.recipients_role, org_unit=None, doc_type=None) if items else []
            )
            for recipient in recipients:
                # Each recipient hears only of what they may see.
                mine = alert_items_visible_to(recipient, items)
                if not mine:
                    continue
                notify(
                    recipients=[recipient],
                    kind=NoticeKind.ALERT_DIGEST,
                    context={
                        "alert": rule.code,
                        "count": len(mine),
                        "by_type": dict(Counter(i.doc_type or i.kind for i in mine)),
                        "examples": [f"{i.label}: {i.why}" for i in mine[:10]],
                    },
                    link="/",
                )
        runs.append(run)
    return runs
