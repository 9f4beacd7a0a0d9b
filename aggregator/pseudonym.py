"""Keyed pseudonyms: the HMAC key from the environment, and the Pseudonymiser exports and `forget` use."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from aggregator.errors import UsageError
from aggregator.scrubber import Scrubber, account_key, split_account

__all__ = ["MIN_KEY_LENGTH", "PSEUDONYM_KEY_ENV", "PrivacyError", "Pseudonymiser", "pseudonym_key"]

PSEUDONYM_KEY_ENV = "AGGREGATOR_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 16


class PrivacyError(UsageError):
    """A privacy step cannot run as asked (a missing or weak key, a value that cannot be an
    account): a usage error, nothing ran; the message names what to fix."""


def pseudonym_key(env: Mapping[str, str], required: bool = True) -> bytes | None:
    """The HMAC key from AGGREGATOR_PSEUDONYM_KEY; PrivacyError when it is needed and missing or weak."""
    value = env.get(PSEUDONYM_KEY_ENV, "")
    if not value.strip():
        if not required:
            return None
        raise PrivacyError(
            f"--pseudonymise needs a secret key: set the environment variable {PSEUDONYM_KEY_ENV} "
            "(e.g. to the output of: python -c 'import secrets; print(secrets.token_hex(32))') "
            "and keep it to get the same pseudonyms next time"
        )
    if len(value) < MIN_KEY_LENGTH:
        raise PrivacyError(
            f"{PSEUDONYM_KEY_ENV} is too short ({len(value)} characters): "
            f"use at least {MIN_KEY_LENGTH} random characters"
        )
    return value.encode()


class Pseudonymiser:
    """Keyed pseudonyms, stable for as long as the key is kept: `user_` + 12 hex digits of
    HMAC-SHA256 for an account, `name_` + 12 for a display name."""

    def __init__(self, key: bytes, accounts: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        self.key = key
        self._memo: dict[str, str] = {}
        self.known = {account_key(a) for a in accounts if a and a.strip()}
        by_local: dict[str, set[str]] = {}
        for acct in self.known:
            by_local.setdefault(split_account(acct)[0], set()).add(acct)
        # '@alice' in a post on alice's own instance is alice@that.instance when only one alice is known
        self.unique_local = {k: v.pop() for k, v in by_local.items() if len(v) == 1}
        self.context: dict[str, str] = {}  # local part -> account, for the post being scrubbed
        self.scrubber = Scrubber(self.resolve)
        for handle, acct in [*self.unique_local.items(), *((a, a) for a in self.known)]:
            self.scrubber.add(handle, self.account(acct), handle=True)
        for name in names:
            if name and name.strip():
                self.scrubber.add(name, self.name(name))

    def _digest(self, kind: str, value: str) -> str:
        memo = f"{kind}:{value}"
        if memo not in self._memo:  # the same people recur on every page
            self._memo[memo] = hmac.new(self.key, memo.encode(), hashlib.sha256).hexdigest()[:12]
        return self._memo[memo]

    def account(self, value: str) -> str:
        return "user_" + self._digest("account", account_key(value))

    def name(self, value: str) -> str:
        return "name_" + self._digest("name", " ".join(value.casefold().split()))

    def resolve(self, local: str, host: str | None) -> str:
        acct = account_key(f"{local}@{host}" if host else local)
        if not host:
            acct = self.context.get(acct) or (
                acct if acct in self.known else self.unique_local.get(acct, acct)
            )
        return self.account(acct)

    def mention(self, value: str) -> str:
        return self.resolve(*split_account(value))

    def text(self, value: str, bare: bool = False, mentions: Iterable[str] = ()) -> str:
        """`value` with accounts and names replaced; `mentions` (the post's own) say which
        account a bare '@alice' in it means."""
        self.context = {split_account(m)[0]: account_key(m) for m in mentions}
        try:
            return self.scrubber.text(value, bare)
        finally:
            self.context = {}
