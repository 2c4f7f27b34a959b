"""Roles and grants (S14): a grant gives a user a role over an organisation unit and its
descendants, optionally for some document types and for a limited time."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from closeout.access.permissions import Perm
from closeout.core.models import OrgUnit


class Role(models.Model):
    code = models.CharField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    permissions = models.JSONField(_("permissions"), default=list)
    includes = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="included_in",
        verbose_name=_("includes"),
    )

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")

    def __str__(self) -> str:
        return f"{self.code} {self.name_zh}"

    def all_permissions(self) -> set[str]:
        """Own permissions plus those of included roles (cycles are tolerated)."""
        seen: set[int] = set()
        perms: set[str] = set()
        stack: list[Role] = [self]
        while stack:
            role = stack.pop()
            if role.pk in seen:
                continue
            seen.add(role.pk)
            perms.update(role.permissions)
            stack.extend(role.includes.all())
        return perms


class GrantQuerySet(models.QuerySet["Grant"]):
    def active(self, at: datetime | None = None) -> "GrantQuerySet":
        moment = at or timezone.now()
        return self.filter(
            Q(valid_from__lte=moment),
            Q(valid_until__isnull=True) | Q(valid_until__gt=moment),
            revoked_at__isnull=True,
        )


class Grant(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="closeout_grants"
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="grants")
    org_unit = models.ForeignKey("core.OrgUnit", on_delete=models.PROTECT, related_name="+")
    doc_types = models.JSONField(
        _("document types"), default=list, blank=True, help_text="empty = every type"
    )
    valid_from = models.DateTimeField(_("valid from"), default=timezone.now)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    expiring_notified_at = models.DateTimeField(null=True, blank=True)
    expired_notified_at = models.DateTimeField(null=True, blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")

    def __str__(self) -> str:
        return f"{self.user} · {self.role.code} @ {self.org_unit.code}"

    def covers(self, org_unit: OrgUnit | None, doc_type: str | None) -> bool:
        """Does this grant reach `org_unit` (its unit or a descendant) and `doc_type`? None
        means "any": the question is then only about the other one."""
        if org_unit is not None and not org_unit.path.startswith(self.org_unit.path):
            return False
        return not (doc_type and self.doc_types and doc_type not in self.doc_types)


class PermissionConflict(models.Model):
    """Two permissions that may not be combined in one user's grant set (separation of duties)."""

    perm_a = models.CharField(max_length=40, choices=Perm.choices)
    perm_b = models.CharField(max_length=40, choices=Perm.choices)
    reason = models.CharField(_("reason"), max_length=200)

    class Meta:
        verbose_name = _("permission conflict")
        verbose_name_plural = _("permission conflicts")

    def __str__(self) -> str:
        return f"{self.perm_a} ⟂ {self.perm_b}"


__all__ = ["Grant", "Perm", "PermissionConflict", "Role"]
