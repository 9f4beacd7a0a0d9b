"""Connectors by source type. Each turns one configured source into a stream of Pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aggregator.config import Config, SourceConfig
from connectors.base import Connector, ConnectorError, Page, Post

__all__ = ["Connector", "ConnectorError", "Page", "Post", "build_connector", "registry"]

Factory = Callable[..., Connector]


def registry() -> dict[str, Factory]:
    """Source type name -> factory(source, config, **context). Imported lazily: a broken
    optional connector must not stop the others from loading."""
    from connectors import archives

    table: dict[str, Factory] = {"jsonl": archives.JsonlConnector}
    for type_name, module, attr in (
        ("twarc", "connectors.twarc", "TwarcConnector"),
        ("tags", "connectors.tags", "TagsConnector"),
        ("mastodon", "connectors.mastodon", "MastodonConnector"),
        ("bluesky", "connectors.bluesky", "BlueskyConnector"),
        ("x", "connectors.x", "XConnector"),
        ("feed", "connectors.feeds", "FeedConnector"),
    ):
        try:
            mod = __import__(module, fromlist=[attr])
            table[type_name] = getattr(mod, attr)
        except (ImportError, AttributeError):
            continue
    return table


def build_connector(source: SourceConfig, config: Config, **context: Any) -> Connector:
    """Make the connector for `source`. `context` passes shared things in (http client, env, clock).

    :raises ConnectorError: when this type is not available in this version.
    """
    factory = registry().get(source.type)
    if factory is None:
        raise ConnectorError(f"source {source.name!r}: type {source.type!r} is not supported yet")
    return factory(source, config, **context)
