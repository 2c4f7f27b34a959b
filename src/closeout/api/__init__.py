"""The HTTP API (django-ninja): thin handlers over the services and selectors."""
