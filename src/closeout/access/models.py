"""Roles and grants (S14): a grant gives a user a role over an organisation unit and its
descendants, optionally for some document types and for a limited time."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from closeout.access.permissions import Perm
from closeout.core.models import OrgUnit


class Role(models.Model):
    code = models.CharField("编码 code", max_length=40, unique=True)
    name_zh = models.CharField("名称 name (中文)", max_length=100)
    name_en = models.CharField("名称 name (English)", max_length=100)
    permissions = models.JSONField("权限 permissions", default=list)
    includes = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="included_in",
        verbose_name="继承 includes",
    )

    class Meta:
        verbose_name = "角色 role"
        verbose_name_plural = "角色 roles"

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
        "单据类型 document types", default=list, blank=True, help_text="empty = every type"
    )
    valid_from = models.DateTimeField("生效 valid from", default=timezone.now)
    valid_until = models.DateTimeField("失效 valid until", null=True, blank=True)
    reason = models.TextField("原因 reason", blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    expiring_notified_at = models.DateTimeField(null=True, blank=True)
    expired_notified_at = models.DateTimeField(null=True, blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        verbose_name = "授权 grant"
        verbose_name_plural = "授权 grants"

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
    reason = models.CharField("原因 reason", max_length=200)

    class Meta:
        verbose_name = "职责冲突 permission conflict"
        verbose_name_plural = "职责冲突 permission conflicts"

    def __str__(self) -> str:
        return f"{self.perm_a} ⟂ {self.perm_b}"


__all__ = ["Grant", "Perm", "PermissionConflict", "Role"]
