"""URL routes."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "closeout 结案管理"
admin.site.site_title = "closeout"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("closeout.api.urls")),
    path("", include("closeout.web.urls")),
]
