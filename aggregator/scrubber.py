"""Accounts and names in free text: an account's comparable form, and the Scrubber that finds and replaces them."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["Resolve", "Scrubber", "account_key", "split_account"]

TOKEN = re.compile(r"\w+")
NAME = r"\w(?:[\w.\-]*\w)?"
HOST = r"[\w\-]+(?:\.[\w\-]+)+"
# One pass over text: a URL (accounts in its path), an @mention (@user, @user@host), a Bluesky DID.
SPECIAL = re.compile(
    rf"(?P<url>(?:https?://|(?<![\w.@/])(?=(?:www\.|mobile\.)?(?:x|twitter)\.com/|bsky\.app/))"
    rf"[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}}])"
    rf"|(?<![\w@])[@＠](?P<mention>{NAME}(?:@{HOST})?)"
    r"|(?P<did>did:(?:plc|web):[\w.:%\-]*\w)"
)
URL_PARTS = re.compile(r"(?P<base>(?:https?://)?(?P<host>[^/?#]+))(?P<rest>.*)", re.DOTALL)
# /@user or /@user@host (Mastodon profiles and posts), /users/user (ActivityPub ids), DIDs.
PATH_ACCOUNT = re.compile(
    rf"(?<=/)@(?P<at>{NAME})(?:@(?P<host>{HOST}))?|(?<=/users/)(?P<user>{NAME})"
    r"|(?P<did>did:(?:plc|web):[\w.:%\-]*\w)"
)
X_HOSTS = {"twitter.com", "www.twitter.com", "mobile.twitter.com", "x.com", "www.x.com"}
X_RESERVED = {"i", "intent", "hashtag", "search", "home", "share", "explore", "settings", "status"}
X_PATH = re.compile(r"^/(?P<name>\w{1,50})(?!\w)")
BSKY_PATH = re.compile(r"^/profile/(?P<name>[\w.:%\-]*\w)")
# "(she/her)", "| NHS". No bracket inside brackets, and a tail runs to the very end (DOTALL): each
# character is read once, so a hostile name of a million "(" or " -" costs no more than its length.
NAME_EXTRAS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\s[|,•·–—-]\s.*$|[|,].*$", re.DOTALL)

Resolve = Callable[[str, str | None], str | None]


def account_key(value: str) -> str:
    """The comparable form of an account: no surrounding space or leading @, lower case."""
    return value.strip().lstrip("@＠").lower()


def split_account(value: str) -> tuple[str, str | None]:
    """An account's local part and its host (None when written without one)."""
    local, _, host = account_key(value).partition("@")
    return local, host or None


def _name_variants(name: str) -> list[str]:
    """A display name as written, and without decorations such as '(she/her)' or '| NHS England'."""
    core = NAME_EXTRAS.sub("", name).strip()
    return [name, core] if core and core != name else [name]


class Scrubber:
    """Replaces accounts found in URLs, @mentions and DIDs (through `resolve`), then known
    names and handles written out in free text (matched word by word, ignoring case)."""

    def __init__(self, resolve: Resolve) -> None:
        self.resolve = resolve
        self.phrases: dict[tuple[str, ...], str] = {}
        self.longest: dict[str, int] = {}  # first word -> most words of a phrase starting with it
        self.words: dict[str, str] = {}  # one-word names, matched with their case ('Helen')
        self.handles: dict[str, str] = {}  # one-word handles: bare words only where `bare`
        self._firsts: set[str] | None = None

    def add(self, text: str, replacement: str, handle: bool = False) -> None:
        self._firsts = None
        for variant in [text] if handle else _name_variants(text):
            found = TOKEN.findall(variant)
            tokens = tuple(t.casefold() for t in found)
            if len(tokens) > 1:
                self.phrases[tokens] = replacement
                self.longest[tokens[0]] = max(self.longest.get(tokens[0], 0), len(tokens))
            elif tokens and handle:
                self.handles[tokens[0]] = replacement
            elif tokens and len(tokens[0]) >= 3:  # 'Al' would eat every 'al' in the text
                self.words[found[0]] = replacement

    def first_words(self) -> set[str]:
        if self._firsts is None:
            self._firsts = {*self.longest, *(w.casefold() for w in self.words), *self.handles}
        return self._firsts

    def text(self, value: str, bare: bool = False) -> str:
        """`value` with every account, name and handle this scrubber knows replaced."""
        return self._phrases(SPECIAL.sub(self._special, value), bare)

    def _swap(self, original: str, local: str, host: str | None, prefix: str = "") -> str:
        replacement = self.resolve(local, host)
        return prefix + replacement if replacement else original

    def _special(self, m: re.Match[str]) -> str:
        if m["url"]:
            return self._url(m["url"])
        if m["mention"]:
            return self._swap(m.group(), *split_account(m["mention"]), prefix="@")
        return self._swap(m.group(), m["did"], None)

    def _url(self, url: str) -> str:
        m = URL_PARTS.match(url)
        if not m:
            return url
        host, rest = m["host"].lower().rpartition("@")[2].split(":")[0], m["rest"]
        if host in X_HOSTS:
            rest = X_PATH.sub(
                lambda p: (
                    p.group()
                    if p["name"].lower() in X_RESERVED
                    else self._swap(p.group(), p["name"], None, "/")
                ),
                rest,
            )
        elif host == "bsky.app":
            rest = BSKY_PATH.sub(
                lambda p: self._swap(p.group(), p["name"], None, "/profile/"), rest
            )

        def path(p: re.Match[str]) -> str:
            if p["at"]:
                return self._swap(p.group(), p["at"], p["host"] or host, "@")
            return self._swap(p.group(), p["user"] or p["did"], host if p["user"] else None)

        return m["base"] + PATH_ACCOUNT.sub(path, rest)

    def _phrases(self, value: str, bare: bool) -> str:
        if not (self.phrases or self.words or (bare and self.handles)):
            return value
        tokens = list(TOKEN.finditer(value))
        firsts = self.first_words()
        out, last, i = [], 0, 0
        while i < len(tokens):
            if tokens[i].group().casefold() not in firsts:  # most words start nothing we know
                i += 1
                continue
            n, replacement = self._match(tokens, i, bare)
            if replacement is None:
                i += 1
                continue
            out += [value[last : tokens[i].start()], replacement]
            last, i = tokens[i + n - 1].end(), i + n
        return "".join([*out, value[last:]])

    def _match(self, tokens: list[re.Match[str]], i: int, bare: bool) -> tuple[int, str | None]:
        word = tokens[i].group()
        folded = word.casefold()
        for n in range(min(self.longest.get(folded, 0), len(tokens) - i), 1, -1):
            found = self.phrases.get(tuple(t.group().casefold() for t in tokens[i : i + n]))
            if found:
                return n, found
        found = self.words.get(word)
        if not found and bare and self._alone(tokens[i]):
            found = self.handles.get(folded)
        return (1, found) if found else (0, None)

    @staticmethod
    def _alone(token: re.Match[str]) -> bool:
        """A bare handle stands alone ('erin', @<span>erin</span>), not as a word of a name."""
        text, start, end = token.string, token.start(), token.end()
        return (start == 0 or not text[start - 1].isspace()) and (
            end == len(text) or not text[end].isspace()
        )
