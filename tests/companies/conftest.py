"""The API helpers of tests/api serve the company tests too."""

from tests.api.conftest import _api_defaults, api_for

__all__ = ["_api_defaults", "api_for"]
