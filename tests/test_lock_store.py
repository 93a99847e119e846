"""The cross-replica lock store (components/lock_store.py) against a real Redis server."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from components.lock_store import RedisMutexLockStore

from backing import Redis, ensure_installed
from servers import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    ensure_installed(("redis-server",))
    server = Redis(tmp_path_factory.mktemp("redis"), free_port()).start()
    yield server
    server.stop()


def replica(redis_server, **kw) -> RedisMutexLockStore:
    """One Rasa server's lock store, built as Rasa builds it from endpoints.yml."""
    store = LockStore.create(
        EndpointConfig(
            url="127.0.0.1", type="components.lock_store.RedisMutexLockStore", port=redis_server.port, db=1, **kw
        )
    )
    assert isinstance(store, RedisMutexLockStore)
    return store


async def test_two_replicas_never_handle_one_conversation_at_once(redis_server):
    one, two = replica(redis_server), replica(redis_server)
    inside, most, done = 0, 0, []

    async def handle(store, n):
        nonlocal inside, most
        async with store.lock("rest:same"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)  # the message being handled, with awaits in it
            inside -= 1
            done.append(n)

    await asyncio.gather(*(handle(one if n % 2 else two, n) for n in range(40)))
    assert most == 1 and sorted(done) == list(range(40))


async def test_other_conversations_do_not_wait(redis_server):
    store = replica(redis_server)
    async with store.lock("rest:a"):
        begin = time.monotonic()
        async with store.lock("rest:b"):
            pass
        assert time.monotonic() - begin < 0.5


async def test_a_replica_killed_while_holding_the_lock_frees_it_after_its_lifetime(redis_server, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import asyncio, sys\n"
                "from rasa.utils.endpoints import EndpointConfig\n"
                "from components.lock_store import RedisMutexLockStore\n"
                f"s = RedisMutexLockStore(EndpointConfig(url='127.0.0.1', port={redis_server.port}))\n"
                "async def hold():\n"
                "    async with s.lock('rest:victim', lock_lifetime=2):\n"
                "        print('held', flush=True)\n"
                "        await asyncio.sleep(600)\n"
                "asyncio.run(hold())\n"
            ),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    store = replica(redis_server)
    with pytest.raises(LockError):  # still held by the dead one: no one else gets it early
        async with store.lock("rest:victim", lock_lifetime=0.5):
            pass
    begin = time.monotonic()
    async with store.lock("rest:victim", lock_lifetime=5):
        waited = time.monotonic() - begin
    assert waited < 3


async def test_a_late_release_never_frees_the_next_holders_lock(redis_server):
    store = replica(redis_server)
    key = store.key("rest:late")
    async with store.lock("rest:late", lock_lifetime=0.2):
        await asyncio.sleep(0.3)  # took longer than its lifetime: the lock expired meanwhile
        assert store.red.set(key, "successor", nx=True, px=5000)  # and someone else took it
    assert store.red.get(key) == b"successor"  # the late release left it alone
    store.red.delete(key)
