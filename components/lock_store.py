"""A Redis lock store whose lock holds across Rasa servers: one message of a conversation at a time.

Rasa OSS's RedisLockStore issues its tickets by reading the conversation's
TicketLock, adding a ticket and writing it back: two Rasa servers doing this
at once can both get the lock (Rasa PR 11256 said so; its fix was reverted
from OSS, the concurrent lock store is Rasa Pro's). Here the lock is one
atomic Redis command, ``SET key token NX PX ttl``: whoever sets it holds it,
the others try again every few milliseconds, and release deletes the key
only if it still holds the holder's own token (a Lua compare-and-delete), so
a holder that took too long never frees its successor's lock. A Rasa server
killed while holding it frees it when the TTL runs out.

A mutex, not a queue: two messages of one conversation waiting at once are
served one after the other, but not necessarily in the order they came. A
person sends one message and waits for the answer, so that order is theirs;
a fair queue that survives a dead holder needs more than Redis gives in one
command, and correctness (never two holders, never stuck) came first.

    lock_store:
      type: components.lock_store.RedisMutexLockStore
      url: 127.0.0.1      # Redis host
      port: 6379
      db: 1
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Optional, Text

from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

# How often a waiting message tries again (Rasa's own waits a whole second).
RETRY_S = 0.02
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisMutexLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # how Rasa builds a lock store named by module path
            kwargs = {**endpoint_config.kwargs, **kwargs}
            kwargs.setdefault("host", endpoint_config.url or "localhost")
        super().__init__(**kwargs)
        self._release = self.red.register_script(_RELEASE)

    def key(self, conversation_id: Text) -> str:
        return f"{self.key_prefix}mutex:{conversation_id}"

    @asynccontextmanager
    async def lock(
        self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = 1
    ) -> AsyncGenerator[None, None]:
        """Hold the conversation's lock for at most `lock_lifetime` seconds; wait as long for it."""
        key, token = self.key(conversation_id), secrets.token_hex(16)
        deadline = time.monotonic() + lock_lifetime
        while not self.red.set(key, token, nx=True, px=int(lock_lifetime * 1000)):
            if time.monotonic() > deadline:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            await asyncio.sleep(min(RETRY_S, wait_time_in_seconds))
        try:
            yield None
        finally:
            if not self._release(keys=[key], args=[token]):
                logger.warning("The lock of a conversation expired while its message was handled")
