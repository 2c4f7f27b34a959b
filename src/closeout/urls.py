"""URL routes."""

from django.contrib import admin
from django.urls import include, path

from closeout.web.forms import ThrottledAdminLoginForm

admin.site.site_header = "closeout 结案管理"
admin.site.site_title = "closeout"
# One sign-in throttle for every login form: the admin's shares the workbench's counters.
admin.site.login_form = ThrottledAdminLoginForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("closeout.api.urls")),
    path("", include("closeout.web.urls")),
]
