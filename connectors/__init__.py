"""Connectors by source type: each type's settings parser and the connector its sources become.

Light on purpose: the config loader imports this package to parse every source's settings, so
importing it imports no connector, HTTP or parsing library. A type's connector module is imported
only when a connector is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from importlib import import_module
from types import MappingProxyType
from typing import Any

from aggregator.settings import EventConfig, SourceConfig
from connectors import settings
from connectors.base import Connector, ConnectorError, Page, Post, SourceSpec

__all__ = [
    "TYPES",
    "Connector",
    "ConnectorError",
    "Page",
    "Post",
    "SourceSpec",
    "SourceType",
    "build_connector",
    "parse_settings",
    "registry",
    "spec_for",
]

Factory = Callable[..., Connector]
Parser = Callable[[Mapping[str, Any], tzinfo], tuple[Any, list[str]]]


@dataclass(frozen=True)
class SourceType:
    """A source type: how its settings are read, and where its connector class is."""

    parse_settings: Parser
    connector: str  # "module:Class", imported when a connector is built


TYPES: Mapping[str, SourceType] = MappingProxyType({
    "jsonl": SourceType(settings.parse_file, "connectors.archives:JsonlConnector"),
    "twarc": SourceType(settings.parse_file, "connectors.twarc:TwarcConnector"),
    "tags": SourceType(settings.parse_file, "connectors.tags:TagsConnector"),
    "mastodon": SourceType(settings.parse_mastodon, "connectors.mastodon:MastodonConnector"),
    "bluesky": SourceType(settings.parse_bluesky, "connectors.bluesky:BlueskyConnector"),
    "x": SourceType(settings.parse_x, "connectors.x:XConnector"),
    "feed": SourceType(settings.parse_feed, "connectors.feeds:FeedConnector"),
    "jetstream": SourceType(settings.parse_jetstream, "connectors.jetstream:JetstreamConnector"),
})  # fmt: skip


def parse_settings(
    source_type: str, raw: Mapping[str, Any], timezone: tzinfo = UTC
) -> tuple[Any, list[str]]:
    """A `[[sources]]` table's settings as its type reads them (`timezone`: the event's), or None
    and every problem as 'key: what is wrong'.

    :raises KeyError: for a type that is not in TYPES (the loader names it first).
    """
    return TYPES[source_type].parse_settings(raw, timezone)


def registry() -> dict[str, Factory]:
    """Source type name -> its connector class, made as `Class(spec, **context)`. Imported here,
    each on its own: a broken optional connector must not stop the others from loading."""
    table: dict[str, Factory] = {}
    for type_name, kind in TYPES.items():
        module, _, attr = kind.connector.partition(":")
        try:
            table[type_name] = getattr(import_module(module), attr)
        except (ImportError, AttributeError):
            continue
    return table


def spec_for(source: SourceConfig, event: EventConfig) -> SourceSpec[Any]:
    """What a connector is told of `source`: never the whole config."""
    tags = (t.lstrip("#＃") for t in source.hashtags or event.hashtags)
    return SourceSpec(source.name, source.settings, tuple(dict.fromkeys(t for t in tags if t)),
                      source.path)  # fmt: skip


def build_connector(source: SourceConfig, event: EventConfig, **context: Any) -> Connector:
    """Make the connector for `source`. `context` lends it the run's shared things (http, env,
    clock: see `Connector`).

    :raises ConnectorError: when this type is not available in this version, or the source
        cannot start (e.g. a credential missing from the environment).
    """
    factory = registry().get(source.type)
    if factory is None:
        raise ConnectorError(f"source {source.name!r}: type {source.type!r} is not supported yet")
    return factory(spec_for(source, event), **context)
