"""The standard roles. Supervisor includes operator (role inheritance)."""

from django.db import migrations

ALL = [
    "document.view",
    "document.sync",
    "close.request",
    "close.direct",
    "close.approve",
    "reopen.request",
    "reopen.approve",
    "document.hold",
    "batch.run",
    "import.run",
    "policy.manage",
    "access.manage",
    "audit.view",
    "report.view",
]
ROLES = {
    "operator": (
        "业务员",
        "Operator",
        [
            "document.view",
            "close.request",
            "close.direct",
            "reopen.request",
            "document.hold",
            "batch.run",
            "import.run",
        ],
    ),
    "supervisor": ("主管", "Supervisor", ["close.approve", "reopen.approve", "report.view"]),
    "finance": (
        "财务",
        "Finance",
        [
            "document.view",
            "close.direct",
            "close.approve",
            "reopen.request",
            "reopen.approve",
            "document.hold",
            "report.view",
        ],
    ),
    "auditor": ("审计", "Auditor", ["document.view", "audit.view", "report.view"]),
    "integration": ("系统集成", "ERP integration", ["document.view", "document.sync"]),
    "admin": ("管理员", "Administrator", ALL),
}


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    role = apps.get_model("access", "Role")
    made = {}
    for code, (zh, en, perms) in ROLES.items():
        made[code], _ = role.objects.get_or_create(
            code=code, defaults={"name_zh": zh, "name_en": en, "permissions": perms}
        )
    made["supervisor"].includes.add(made["operator"])


class Migration(migrations.Migration):
    dependencies = [("access", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
