"""The HTTP client a connector is handed: auth, timeouts, retries that honour Retry-After,
and a refusal to reach private networks unless the caller allows it (the demo and tests)."""

from pane.connectors.http.client import build_client
from pane.connectors.http.guard import TargetNotAllowed

__all__ = ["TargetNotAllowed", "build_client"]
