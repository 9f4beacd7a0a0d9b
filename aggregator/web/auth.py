"""Moderators' sign-in: the secret from AGGREGATOR_MODERATOR_TOKEN, compared in constant time; a
server-side session per sign-in (a random id in an HttpOnly, SameSite=Strict cookie; nothing signed
with a key, nothing kept after the server stops), each with its own CSRF token that every
state-changing request must carry. The token itself is never logged or shown.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.clock import utcnow

__all__ = ["COOKIE", "TOKEN_ENV", "Session", "Sessions"]

TOKEN_ENV = "AGGREGATOR_MODERATOR_TOKEN"  # noqa: S105 - the variable's name, not a secret
COOKIE = "aggregator_moderator"
LIFETIME = timedelta(hours=14)  # a long event day; then sign in again
MAX_SESSIONS = 200  # the oldest go first past this


@dataclass(frozen=True)
class Session:
    id: str
    who: str
    csrf: str
    expires: datetime


class Sessions:
    """The signed-in moderators, in this process's memory."""

    def __init__(self, token: str | None, clock: Callable[[], datetime] = utcnow) -> None:
        self.token = token or None
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def sign_in(self, who: str, given: str) -> Session | None:
        """A new session when `given` is the token; None otherwise (and always with no token)."""
        if self.token is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        if len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].expires)]
        who = " ".join(who.split())[:80] or "moderator"
        session = Session(secrets.token_urlsafe(32), who, secrets.token_urlsafe(32),
                          self.clock() + LIFETIME)  # fmt: skip
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None."""
        session = self._sessions.get(session_id or "")
        if session is None or session.expires <= self.clock():
            self._sessions.pop(session_id or "", None)
            return None
        return session

    def end(self, session_id: str | None) -> None:
        self._sessions.pop(session_id or "", None)

    @staticmethod
    def csrf_ok(session: Session, given: str | None) -> bool:
        return hmac.compare_digest((given or "").encode(), session.csrf.encode())
