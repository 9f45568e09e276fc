"""Connectors found through the entry-point group ``pane.connectors``.

Unlike loaders that log a broken plugin and carry on, pane refuses to start: a link whose
connector silently vanished would stop syncing without anyone noticing.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from pydantic import BaseModel, ValidationError

from pane.connectors.base import Connector
from pane.connectors.webhooks import WebhookScheme

GROUP = "pane.connectors"


class ConnectorLoadError(RuntimeError):
    pass


@cache
def connectors() -> dict[str, type[Connector]]:
    found: dict[str, type[Connector]] = {}
    for entry in entry_points(group=GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:
            raise ConnectorLoadError(
                f"connector {entry.name!r} ({entry.value}) failed to load: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
            raise ConnectorLoadError(f"{entry.value} is not a pane Connector class")
        if loaded.name != entry.name:
            raise ConnectorLoadError(
                f"entry point {entry.name!r} names a connector called {loaded.name!r}"
            )
        if entry.name in found and found[entry.name] is not loaded:
            raise ConnectorLoadError(f"two packages provide a connector named {entry.name!r}")
        found[entry.name] = loaded
    return dict(sorted(found.items()))


def link_streams(connector: str, config: dict[str, object]) -> list[str]:
    """The streams a link reads: none when its connector is gone, all the connector's when the
    config no longer fits it (the sync then fails, saying why)."""
    connector_class = connectors().get(connector)
    if connector_class is None:
        return []
    try:
        parsed = connector_class.config_model.model_validate(config)
    except ValidationError:
        return sorted(stream.value for stream in connector_class.streams)
    return sorted(stream.value for stream in connector_class.streams_for(parsed))


def webhook_scheme(
    connector: str, config: dict[str, object]
) -> tuple[type[Connector], BaseModel, WebhookScheme] | None:
    """For a link that takes webhooks: its connector, its config as the connector reads it,
    and how its vendor signs. None for one that takes none (or whose connector is gone, or
    whose config no longer fits it)."""
    connector_class = connectors().get(connector)
    if connector_class is None or not connector_class.webhooks:
        return None
    try:
        parsed = connector_class.config_model.model_validate(config)
    except ValidationError:
        return None
    scheme = connector_class.webhook_scheme(parsed)
    return None if scheme is None else (connector_class, parsed, scheme)
