"""Mastodon hashtag timelines: page back to `since` on the first run, then fetch only what is newer.

Cursor: {"streams": {"<instance base URL> #<tag lowercased>": {"newest_id", "backfill_max_id",
"backfill_done"}}}. Everything from backfill_max_id (or `since`, once backfill_done) up to
newest_id is stored, so a run killed after any page resumes with no gap: newer posts via min_id,
older via max_id.
One instance failing does not stop the others: their pages are yielded, then one error is raised.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from connectors.base import (
    ConnectorError,
    Page,
    Post,
    SourceSpec,
    each_isolated,
    isolate,
    parse_time,
)
from connectors.html import html_to_text, links_in_html, sanitize_html
from connectors.http import HttpClient, HttpError
from connectors.settings import MASTODON_TOKEN_ENV, MastodonSettings
from connectors.values import brief, count, optional_id, optional_text

__all__ = ["MastodonConnector", "id_key", "instance_key", "post_from_status"]

log = logging.getLogger(__name__)

PAGE_LIMIT = 40
AUTH_STATUSES = (401, 403, 422)
OPT_OUT_RE = re.compile(r"#(?:nobots?|nosearch|noindex)\b", re.I)


def id_key(status_id: str) -> tuple[int, str]:
    """Order of Mastodon ids: opaque strings, compared by (length, value), never as ints."""
    return (len(status_id), status_id)


class MastodonConnector:
    """A `mastodon` source: the tag timeline of each hashtag on each configured instance."""

    def __init__(
        self,
        spec: SourceSpec[MastodonSettings],
        *,
        http: HttpClient,
        env: Mapping[str, str] | None = None,
        **_: Any,
    ) -> None:
        self.name = spec.name
        self.instances = spec.settings.instances
        self.hashtags = spec.hashtags
        self.since = spec.settings.since
        self.token_env = spec.settings.token_env
        self.env = os.environ if env is None else env
        self.http = http.retrying(spec.settings.retry)

    def fetch(self, cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        """Pages per (instance, tag), each carrying the whole cursor to save after it."""
        state = _load_state(cursor)

        def instance(base: str) -> Iterator[Page]:
            for tag in self.hashtags:
                yield from self._stream(self.http, base, tag, state)

        yield from each_isolated(self.name, self.instances, instance)

    def _stream(
        self, http: HttpClient, base: str, tag: str, state: dict[str, Any]
    ) -> Iterator[Page]:
        key = f"{base} #{tag.lower()}"
        st = state.setdefault(key, {})
        if not st.get("newest_id"):  # nothing seen yet: (re)start paging back from the top
            st.update(newest_id=None, backfill_max_id=None, backfill_done=False)
        else:
            yield from self._forward(http, base, tag, st, state)
        if not st.get("backfill_done"):
            yield from self._backfill(http, base, tag, st, state)

    def _forward(
        self, http: HttpClient, base: str, tag: str, st: dict, state: dict
    ) -> Iterator[Page]:
        """Newer than newest_id, oldest chunk first (min_id is gap-free; since_id is not)."""
        while True:
            statuses, _, waits = self._get(http, base, tag, {"min_id": st["newest_id"]})
            ids = _ids(statuses)
            newest = max([*ids, st["newest_id"]], key=id_key)
            if not statuses or newest == st["newest_id"]:  # empty, or a server ignoring min_id
                if statuses or waits:
                    yield self._page(statuses, base, tag, state, waits)
                return
            st["newest_id"] = newest
            yield self._page(statuses, base, tag, state, waits)

    def _backfill(
        self, http: HttpClient, base: str, tag: str, st: dict, state: dict
    ) -> Iterator[Page]:
        """Older than backfill_max_id via Link rel="next", down to `since` or the end."""
        while not st["backfill_done"]:
            params = {"max_id": st["backfill_max_id"]} if st["backfill_max_id"] else {}
            statuses, links, waits = self._get(http, base, tag, params)
            ids = _ids(statuses)
            if not ids:
                st["backfill_done"] = True
                yield self._page(statuses, base, tag, state, waits)
                return
            # Never trust the link past what we saw: the larger max_id can only overlap, not skip.
            linked = parse_qs(urlsplit(links.get("next", "")).query).get("max_id", [])
            next_max = max([min(ids, key=id_key), *linked[:1]], key=id_key)
            if st["backfill_max_id"] and id_key(next_max) >= id_key(st["backfill_max_id"]):
                log.warning("%s #%s: paging back made no progress; stopping here", base, tag)
                return
            if st["newest_id"] is None:
                st["newest_id"] = max(ids, key=id_key)
            st["backfill_max_id"] = next_max
            page = self._page(statuses, base, tag, state, waits)
            kept = [p for p in page.posts if not (self.since and p.created_at < self.since)]
            more = "next" in links or len(statuses) >= PAGE_LIMIT  # a full page without Link: go on
            st["backfill_done"] = not more or len(kept) < len(page.posts)
            page.posts, page.cursor = kept, _snapshot(state)
            yield page

    def _get(
        self, http: HttpClient, base: str, tag: str, params: dict[str, Any]
    ) -> tuple[list[Any], dict[str, str], int]:
        """One tag timeline page: (statuses, links, waits). Unknown tag -> no statuses."""
        url = f"{base}/api/v1/timelines/tag/{quote(tag, safe='')}"
        before = http.waits
        try:
            resp = http.get(url, params={"limit": PAGE_LIMIT, **params}, headers=self._auth(base),
                            accept=(404,))  # fmt: skip
        except HttpError as exc:
            if exc.status in AUTH_STATUSES:
                raise ConnectorError(self._token_message(base, exc.status)) from None
            raise ConnectorError(str(exc)) from None
        waits = http.waits - before
        if resp.status == 404:
            body = resp.json() if resp.content.lstrip().startswith(b"{") else None
            if isinstance(body, dict) and body.get("error") == "Record not found":
                return [], {}, waits
            raise ConnectorError(f"no Mastodon API at {base} (GET {url} answered HTTP 404)")
        body = resp.json()
        if not isinstance(body, list):
            raise ConnectorError(
                f"GET {url} answered {type(body).__name__}, not a list of statuses"
            )
        return body, resp.links, waits

    def _page(self, statuses: list[Any], base: str, tag: str, state: dict, waits: int) -> Page:
        host, where = urlsplit(base).hostname or base, instance_key(base)
        page = Page(posts=[], cursor=_snapshot(state), waits=waits)
        page.posts = isolate(
            statuses,
            lambda status: post_from_status(status, host, instance=where),
            lambda n, status: f"{where} #{tag} status {_label(status) or f'#{n + 1}'}",
            page,
        )
        for post in page.posts:
            post.via = f"{where} #{tag}"
        skipped = len(statuses) - len(page.posts) - len(page.quarantined)
        if skipped:
            log.info("%s #%s: skipped %d posts from accounts that opted out", host, tag, skipped)
        return page

    def _token_env_name(self, base: str) -> str | None:
        if isinstance(self.token_env, Mapping):
            host = urlsplit(base).hostname
            return next(
                (v for k, v in self.token_env.items() if k.rstrip("/") in (base, host)), None
            )
        return self.token_env or None

    def _auth(self, base: str) -> dict[str, str]:
        name = self._token_env_name(base)
        token = self.env.get(name, "").strip() if name else ""
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _token_message(self, base: str, status: int | None) -> str:
        name = self._token_env_name(base)
        if name and self.env.get(name, "").strip():
            return (
                f"Mastodon instance {base} refused the token in env var {name} "
                f"(HTTP {status}): renew it"
            )
        if name:
            return f"Mastodon instance {base} needs a token (HTTP {status}): set the env var {name}"
        return (
            f"Mastodon instance {base} needs a token (HTTP {status}): set an env var such as "
            f'{MASTODON_TOKEN_ENV} and add token_env = "{MASTODON_TOKEN_ENV}" to source {self.name!r}'
        )


def post_from_status(status: Any, host: str, instance: str | None = None) -> Post | None:
    """A Status (a boost counts as its original) -> Post; None if the author opted out.

    `instance` names the instance whose local ids `local_id` and `reply_to` are (default: host).

    :raises ValueError: (or KeyError/TypeError) when a field the Post needs is missing or malformed.
    """
    if not isinstance(status, dict):
        raise ValueError("not a JSON object")
    original = status.get("reblog") or status
    if not isinstance(original, dict):
        raise ValueError("reblog is not an object")
    account = original["account"]
    if not isinstance(account, dict):
        raise ValueError("account is not an object")
    if opted_out(account):
        return None
    uri = original["uri"]
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError("no uri")
    content = _html(original.get("content"), "content")
    spoiler = html_to_text(_html(original.get("spoiler_text"), "spoiler_text"))
    quoted = (original.get("quote") or {}).get("quoted_status") or {}
    edited = original.get("edited_at")
    local_id = original.get("id")
    reply_to = optional_id(original.get("in_reply_to_id"), "in_reply_to_id")
    return Post(
        platform="mastodon",
        id=uri,
        created_at=parse_time(original["created_at"], "created_at"),
        author=full_acct(account["acct"], host),
        author_name=optional_text(account.get("display_name")),
        text="\n\n".join(t for t in (spoiler, html_to_text(content)) if t),
        html=sanitize_html(content),
        url=optional_text(original.get("url")) or uri,
        reply_to=reply_to,
        reply_to_via=(instance or host) if reply_to else None,
        local_id=local_id if isinstance(local_id, str) and local_id else None,
        quote_of=optional_id(quoted.get("uri"), "quoted uri") if isinstance(quoted, dict) else None,
        replies=count(original.get("replies_count"), "replies_count"),
        reposts=count(original.get("reblogs_count"), "reblogs_count"),
        likes=count(original.get("favourites_count"), "favourites_count"),
        quotes=count(original.get("quotes_count"), "quotes_count"),
        lang=optional_text(original.get("language")),
        hashtags=[str(t["name"]) for t in original.get("tags") or []],
        mentions=[full_acct(m["acct"], host) for m in original.get("mentions") or []],
        links=_links(original, content),
        media=[_media(m) for m in original.get("media_attachments") or []],
        edited_at=parse_time(edited, "edited_at") if edited else None,
        raw=status,
    )


def _html(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {brief(value)}")
    return value


def opted_out(account: Mapping[str, Any]) -> bool:
    """noindex, or #nobot/#nobots/#nosearch/#noindex in the profile note or fields."""
    if account.get("noindex") is True:
        return True
    fields = [f for f in account.get("fields") or [] if isinstance(f, dict)]
    texts = [
        account.get("note") or "",
        *(f"{f.get('name', '')} {f.get('value', '')}" for f in fields),
    ]
    return any(OPT_OUT_RE.search(html_to_text(str(t))) for t in texts)


def instance_key(base: str) -> str:
    """How posts name an instance (`via`, `reply_to_via`): its host, with the port if one is set."""
    return urlsplit(base).netloc.rpartition("@")[2].lower() or base  # never a user:password@


def full_acct(acct: Any, host: str) -> str:
    """acct with its domain: a local account ("user") becomes "user@<instance host>"."""
    if not isinstance(acct, str) or not acct.strip().strip("@"):
        raise ValueError("account has no acct")
    acct = acct.lstrip("@")
    return acct if "@" in acct else f"{acct}@{host}"


def _links(status: Mapping[str, Any], content: str) -> list[str]:
    """Links in the content and the preview card, minus the hashtag and mention URLs."""
    skip = {t.get("url") for t in status.get("tags") or []}
    skip |= {m.get("url") for m in status.get("mentions") or []}
    card_url = (status.get("card") or {}).get("url")
    return list(
        dict.fromkeys(u for u in [*links_in_html(content), card_url] if u and u not in skip)
    )


def _media(item: Any) -> dict[str, Any]:
    return {"url": item.get("url") or item.get("remote_url"), "type": item.get("type"),
            "alt": item.get("description")}  # fmt: skip


def _label(status: Any) -> str | None:
    """A status's id on its instance, if it is a plausible one (short text), else None."""
    sid = status.get("id") if isinstance(status, dict) else None
    return sid if isinstance(sid, str) and sid and len(sid) <= 100 else None


def _ids(statuses: list[Any]) -> list[str]:
    return [sid for sid in map(_label, statuses) if sid]


def _snapshot(state: dict[str, Any]) -> dict[str, Any]:
    return {"streams": copy.deepcopy(state)}


def _load_state(cursor: Mapping[str, Any] | None) -> dict[str, Any]:
    streams = (cursor or {}).get("streams")
    if not isinstance(streams, Mapping):
        return {}
    return {
        str(k): dict(v) for k, v in copy.deepcopy(dict(streams)).items() if isinstance(v, Mapping)
    }
