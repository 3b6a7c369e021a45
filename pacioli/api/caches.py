"""What the API remembers between requests so that hot routes need not ask the database:
live sessions (for a few seconds) and users' display names.

Both are per process. A session ended in this process (logout, logout everywhere) is
forgotten at once; one ended by another process (another `--workers` process, a script)
stops working here within SESSION_CACHE_TTL_S. Only live sessions are cached, never a
miss, so a new session works at once and an unknown token always asks the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Engine

from pacioli.payments import sessions
from pacioli.payments.directory import display_names
from pacioli.payments.identity_errors import UserNotFound
from pacioli.payments.users import get_user

# A session revoked by another process keeps working here for at most this long.
SESSION_CACHE_TTL_S = 5.0
SESSION_CACHE_SIZE_MAX = 100_000
DIRECTORY_SIZE_MAX = 100_000


class SessionCache:
    """Live sessions by their token's SHA-256 (never the token itself)."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_s: float = SESSION_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        self._hits: dict[bytes, tuple[sessions.LiveSession, float]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> sessions.LiveSession | None:
        """The session if it was found live less than `ttl_s` ago and has not expired."""
        hit = self._hits.get(sessions.token_digest(token))
        if hit is None:
            return None
        session, found_at = hit
        if self._clock() - found_at >= self._ttl_s or session.expires_at <= datetime.now(UTC):
            return None
        return session

    def look_up(self, token: str) -> sessions.LiveSession | None:
        """The live session of this token: from the cache, or the database (blocking)."""
        session = self.cached(token)
        if session is not None:
            return session
        found_at = self._clock()
        session = sessions.find_session(self._engine, token)
        digest = sessions.token_digest(token)
        with self._lock:
            if session is None:
                self._hits.pop(digest, None)
                return None
            if len(self._hits) >= SESSION_CACHE_SIZE_MAX:
                self._hits.clear()
            self._hits[digest] = (session, found_at)
        return session

    def forget_session(self, session_id: UUID) -> None:
        """Call after revoking the session: it stops working in this process at once."""
        self._forget(lambda session: session.id == session_id)

    def forget_user(self, user_id: UUID) -> None:
        """Call after revoking every session of the user."""
        self._forget(lambda session: session.user_id == user_id)

    def _forget(self, matches: Callable[[sessions.LiveSession], bool]) -> None:
        with self._lock:
            for digest in [d for d, (s, _) in self._hits.items() if matches(s)]:
                del self._hits[digest]


class UserDirectory:
    """Which user ids exist, and their display names, remembered once read.

    A user is never deleted and sets a display name only at sign-up, so an entry never
    goes stale; if either changes one day, this cache needs a TTL.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._names: dict[UUID, str | None] = {}

    def known(self, user_id: UUID) -> bool:
        return user_id in self._names

    def exists(self, user_id: UUID) -> bool:
        """Whether the user exists (blocking on a miss)."""
        if user_id in self._names:
            return True
        try:
            user = get_user(self._engine, user_id)
        except UserNotFound:
            return False
        self._remember({user.id: user.display_name})
        return True

    def cached_names(self, user_ids: Iterable[UUID]) -> dict[UUID, str | None] | None:
        """The display names if all are known without the database, else None."""
        names = self._names
        try:
            return {user_id: names[user_id] for user_id in user_ids}
        except KeyError:
            return None

    def names(self, user_ids: Iterable[UUID]) -> dict[UUID, str | None]:
        """The display names of the known users among `user_ids` (blocking on a miss)."""
        wanted = set(user_ids)
        cached = self.cached_names(wanted)
        if cached is not None:
            return cached
        found = display_names(self._engine, wanted)
        self._remember(found)
        return found

    def _remember(self, names: dict[UUID, str | None]) -> None:
        if len(self._names) + len(names) > DIRECTORY_SIZE_MAX:
            self._names = {}
        self._names.update(names)
