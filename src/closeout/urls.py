"""URL routes."""

from django.contrib import admin
from django.urls import path

from closeout.web_home import home

admin.site.site_header = "closeout 结案管理"
admin.site.site_title = "closeout"

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
]
