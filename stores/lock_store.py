"""A Redis lock store whose lock holds across Rasa servers: one message of a conversation at a time.

Why: Rasa OSS's RedisLockStore issues a ticket by reading the conversation's
TicketLock, adding a ticket and writing it back. Two Rasa servers doing that
at once both get the lock, and lost updates can leave an empty TicketLock
that waiters keep re-saving and wait on for ever (Rasa PR 11256 said so; its
fix was reverted from OSS, the concurrent lock store is Rasa Pro's).
tests/test_lock_store.py shows both with two of Rasa's stores on one Redis.

How: taking the lock is one atomic command, ``SET key token NX PX ttl``.
Whoever sets the key holds it; the others retry every few milliseconds (with
asyncio.sleep, so the event loop carries on) for at most the lock's lifetime,
then raise Rasa's LockError. Release is a Lua compare-and-delete: the key is
deleted only if it still holds the holder's own token, so a holder that
outlived its TTL never frees its successor's lock. A Rasa server killed while
holding a lock frees it when the TTL (Rasa's lock lifetime, 60 s unless
TICKET_LOCK_LIFETIME or `lock_lifetime` below says otherwise) runs out.

A mutex, not a FIFO queue: messages of one conversation that wait at once are
handled one after the other, but not necessarily in arrival order. Messages
that reach two servers at the same moment have no order to keep anyway, and
one person waits for the answer before writing again. A ticket queue (INCR
plus "now serving") stalls if a waiter dies before its turn; repairing that
takes per-waiter leases, more moving parts than one SET, and never two
holders and never stuck came first.

endpoints.yml (`url` is the Redis host, as for Rasa's `type: redis`; a
``redis://`` or ``rediss://`` URL also works):

    lock_store:
      type: stores.lock_store.RedisMutexLockStore
      url: 127.0.0.1
      port: 6379
      db: 1
      # password: ..., key_prefix: musaed, lock_lifetime: 60
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Optional, Text

import redis
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig
from redis.connection import SSLConnection, parse_url

logger = logging.getLogger(__name__)

# Between tries; Rasa's own default is a whole second between tries.
RETRY_S = 0.02
MIN_RETRY_S = 0.005
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def _from_url(url: Text) -> dict:
    """RedisLockStore's keyword arguments from a redis:// or rediss:// URL."""
    parts = parse_url(url)
    if parts.pop("connection_class", None) is SSLConnection:
        parts["use_ssl"] = True
    return {k: v for k, v in parts.items() if k in ("host", "port", "db", "username", "password", "use_ssl")}


class RedisMutexLockStore(RedisLockStore):
    """Per-conversation mutual exclusion across processes: SET NX PX to take, compare-and-delete to release."""

    def __init__(
        self, endpoint_config: Optional[EndpointConfig] = None, lock_lifetime: float = LOCK_LIFETIME, **kwargs: Any
    ) -> None:
        # Rasa builds a lock store named by module path as cls(endpoint_config=...), nothing else.
        if endpoint_config is not None:
            kwargs = {**endpoint_config.kwargs, **kwargs}
            url = endpoint_config.url
            if url and "://" in url:
                kwargs = {**_from_url(url), **kwargs}
            elif url:
                kwargs.setdefault("host", url)
        lock_lifetime = float(kwargs.pop("lock_lifetime", lock_lifetime))
        super().__init__(**kwargs)
        self.lock_lifetime = lock_lifetime
        self._release = self.red.register_script(_RELEASE)

    def key(self, conversation_id: Text) -> str:
        # Not Rasa's key for the conversation: a RedisLockStore's JSON TicketLock never collides with it.
        return f"{self.key_prefix}mutex:{conversation_id}"

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: Optional[float] = None,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[None, None]:
        """Hold the conversation's lock for at most `lock_lifetime` seconds; wait as long for it.

        `wait_time_in_seconds` caps the pause between tries (Rasa passes 1 s; we try far more often).
        """
        lifetime = self.lock_lifetime if lock_lifetime is None else lock_lifetime
        key, token = self.key(conversation_id), secrets.token_hex(16)
        ttl_ms = max(1, int(lifetime * 1000))
        pause = max(MIN_RETRY_S, min(RETRY_S, wait_time_in_seconds))
        deadline = time.monotonic() + lifetime
        while True:
            try:
                if self.red.set(key, token, nx=True, px=ttl_ms):
                    break
            except redis.RedisError as e:  # as Rasa's issue_ticket does: a lock error, not a Redis one
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}': {e}") from e
            if time.monotonic() >= deadline:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            # Jitter: waiters on two servers don't retry in lockstep.
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
        try:
            yield None
        finally:
            try:
                if not self._release(keys=[key], args=[token]):
                    logger.warning(f"The lock of conversation '{conversation_id}' expired before its message was done")
            except redis.RedisError as e:
                # Don't mask the handler's own outcome: the TTL frees the lock.
                logger.warning(f"Could not release the lock of conversation '{conversation_id}': {e}")
