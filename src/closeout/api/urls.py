"""URL routes of the API, mounted at /api/ by closeout.urls."""

from closeout.api.api import urls

# The namespace ninja reverses its own pages with ("api:openapi-json").
app_name = "api"
urlpatterns = urls()[0]
