"""A socket.io client as the web widget is one, for the end-to-end tests.

python-socketio's AsyncClient over HTTP long-polling, the one combination
that works with the versions installed: its websocket transport needs
aiohttp.ClientWSTimeout (aiohttp 3.11; Rasa 3.6 pins 3.9), and the sync
Client has no websocket-client package and runs each event it receives in
a thread of its own, so replies could arrive out of order.

A turn has a definite end: `Tab.say` asks the server to acknowledge the
message, and the server does so once Rasa has handled it, after the
replies, on the same socket, in order. `Tab.flush` does the same for a
socket that sent nothing: what it has not received by then, the server
never sent it.
"""

import asyncio

import socketio

TIMEOUT = 20  # seconds for a connection or a session_confirm
TURN = 60  # seconds for one message to be handled


class Tab:
    """One browser tab of the widget: a socket on the web channel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = socketio.AsyncClient(reconnection=False)
        self.replies: list = []  # every bot_uttered this socket received, in order
        self.confirms: asyncio.Queue = asyncio.Queue()
        self.histories: list = []  # every session_history this socket received
        self.token = None

        @self.client.on("bot_uttered")
        def bot_uttered(message):
            self.replies.append(message)

        @self.client.on("session_confirm")
        def session_confirm(token):
            self.confirms.put_nowait(token)

        @self.client.on("session_history")
        def session_history(entries):
            self.histories.append(entries)

    @property
    def session(self) -> str:
        return self.token.split(".")[0]

    @property
    def conversation(self) -> str:
        return f"web:{self.session}"

    async def connect(self) -> None:
        await self.client.connect(self.url, transports=["polling"], wait_timeout=TIMEOUT)

    async def open(self, presented=None, **fields) -> str:
        """Connect and ask for a session as the widget does (`history=True` after a
        reload, `end=<token>` for «محادثة جديدة»): the token confirmed."""
        await self.connect()
        return await self.request(presented, **fields)

    async def request(self, presented=None, **fields) -> str:
        await self.client.emit("session_request", {"session_id": presented, **fields})
        return await self.confirmed()

    async def confirmed(self) -> str:
        self.token = await asyncio.wait_for(self.confirms.get(), TIMEOUT)
        return self.token

    async def say(self, text: str, **fields) -> list:
        """Send a message as the widget does; the bot's replies this socket received."""
        start = len(self.replies)
        await self.client.call("user_uttered", {"message": text, "session_id": self.token, **fields}, timeout=TURN)
        return self.replies[start:]

    async def flush(self) -> None:
        """A round trip (the widget's own session_request again): whatever the
        server sent this socket before has arrived when it returns."""
        await self.client.call("session_request", {"session_id": self.token}, timeout=TIMEOUT)
        assert await self.confirmed() == self.token

    async def close(self) -> None:
        eio = self.client.eio
        tasks = [t for t in (eio.read_loop_task, eio.write_loop_task) if t]
        closing = asyncio.ensure_future(self.client.disconnect())
        done, _ = await asyncio.wait([closing], timeout=2)
        if not done:
            # Its last long poll can wait for the server's next ping (25 s): the goodbye
            # has been sent by now, so stop waiting for it.
            for task in tasks:
                task.cancel()
            await asyncio.gather(closing, *tasks, return_exceptions=True)
            if eio.http is not None and not eio.http.closed:
                await eio.http.close()
        await asyncio.gather(*tasks, return_exceptions=True)
