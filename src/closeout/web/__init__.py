"""The web workbench (结案工作台): server-rendered pages with htmx, thin over selectors and
services."""
