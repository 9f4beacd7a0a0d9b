"""Hashtag Aggregator: collect an event's posts, tag them to sessions, tell the story."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hashtag-aggregator")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
