"""Editing the permission sets of roles (设置 → 角色权限) in a real browser, in Chinese: the
administrator ticks a permission for the auditor role and saves it with a reason; a role the
administrator holds is refused (separation of duties), in Chinese."""

from typing import Any

from closeout.access.models import Role
from closeout.audit.models import AuditAction, AuditEvent
from tests.factories import Org, user_with_role
from tests.web import test_browser
from tests.web.test_browser import browser, login, new_page, people, shot
from tests.web.zh_check import problems, raw_codes

pytestmark = test_browser.pytestmark
__all__ = ["browser", "people"]


def test_admin_edits_a_roles_permissions_in_chinese(
    browser: Any, live_server: Any, people: dict[str, Any]
) -> None:
    org: Org = people["org"]
    user_with_role("boss", "admin", org.company)
    page = new_page(browser, locale="zh-CN")
    login(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/config/")
    page.click("#config-sections a[href='/config/roles/']")
    page.wait_for_selector("#role-auditor")
    assert "角色权限" in page.locator("h1").inner_text()
    auditor = page.locator("#role-auditor")
    assert "审计" in auditor.locator("h2").inner_text()
    assert "冻结/解冻" in auditor.inner_text() and "hold and release" not in auditor.inner_text()
    assert not problems(page.content(), codes=raw_codes())

    hold = auditor.locator("input[value='document.hold']")
    assert not hold.is_checked()
    hold.check()
    auditor.locator("input[name=reason]").fill("年末盘点需要冻结")
    auditor.locator("button[type=submit]").click()
    page.wait_for_selector("text=角色的权限已保存。")
    assert page.locator("#role-auditor input[value='document.hold']").is_checked()
    assert "document.hold" in Role.objects.get(code="auditor").permissions
    event = AuditEvent.objects.get(action=AuditAction.ROLE_CHANGED)
    assert event.data["added"] == ["document.hold"] and event.reason == "年末盘点需要冻结"
    shot(page, "config-roles-zh")

    # The administrator holds the admin role: changing it is refused, in Chinese.
    admin = page.locator("#role-admin")
    admin.locator("input[value='report.view']").uncheck()
    admin.locator("input[name=reason]").fill("试一下")
    admin.locator("button[type=submit]").click()
    error = page.locator("#role-admin #form-error")
    error.wait_for()
    assert "职责分离" in error.inner_text()
    assert "report.view" in Role.objects.get(code="admin").permissions
    assert not problems(page.content(), codes=raw_codes(), data={"试一下"})
