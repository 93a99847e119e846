"""The web widget's socket.io channel, with session ids issued by the server.

Rasa's own channel takes whatever ``session_id`` a client names, in
``session_request`` and again in every ``user_uttered``, as the conversation:
anyone who knows or guesses one (a WhatsApp number, a leaked id) speaks in
that conversation. Here:

- The server issues each web session a token: 128 random bits and their
  HMAC-SHA256 under a server secret (``MUSAED_SESSION_SECRET``, else
  ``session.secret`` beside the database; musaed/keys.py). The widget keeps
  it in ``localStorage`` and presents it after a page reload.
- A ``session_request`` whose token the server did not sign (forged, guessed,
  another channel's id, a conversation id seen in a log) gets a new session,
  never an existing one.
- The conversation is ``web:<random id>`` (channels/ids.py), bound to the
  socket that asked for it: a ``user_uttered`` speaks in its socket's bound
  conversation whatever ``session_id`` it carries, and a socket that asked
  for none is given one first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage, decode_bearer_token
from rasa.core.channels.socketio import SocketBlueprint, SocketIOOutput
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from channels import limits
from channels.ids import conversation_id
from channels.never_silent import never_silent
from musaed import keys

logger = logging.getLogger(__name__)

CHANNEL = "web"
SECRET_ENV = "MUSAED_SESSION_SECRET"
SECRET_FILE = "session.secret"
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{64})$")


def _signature(session: str, secret: bytes) -> str:
    return hmac.new(secret, b"musaed-web-session:" + session.encode("ascii"), hashlib.sha256).hexdigest()


def issue_token(secret: bytes) -> str:
    """A new session token: ``<128-bit random id>.<its signature>``."""
    session = secrets.token_hex(16)
    return f"{session}.{_signature(session, secret)}"


def session_of(token: Any, secret: bytes) -> Optional[str]:
    """The session id in `token` when this server signed it, else None."""
    # fullmatch: `$` would also match before a trailing newline.
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if not match:
        return None
    session, sig = match.groups()
    return session if hmac.compare_digest(_signature(session, secret), sig) else None


class SocketIOInput(RasaSocketIOInput):
    """Rasa's socket.io input with server-issued sessions (see module doc)."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # No message goes unanswered; long ones and bursts are answered briefly (channels/limits.py).
        on_new_message = limits.guard(never_silent(on_new_message))
        # cors_allowed_origins=[]: as Rasa's own, so the widget works embedded in other sites.
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[])
        socketio_webhook = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio
        secret = keys.shared_secret(SECRET_ENV, SECRET_FILE)
        bound: Dict[str, str] = {}  # socket id -> its conversation
        addresses: Dict[str, Optional[str]] = {}  # socket id -> the client's address (limits per address)

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def start_session(sid: str, token: Any) -> str:
            session = session_of(token, secret)
            if session is None:
                token = issue_token(secret)
                session = session_of(token, secret)
            conversation = conversation_id(CHANNEL, session)
            old = bound.get(sid)
            if old and old != conversation:
                await sio.leave_room(sid, old, namespace=self.namespace)
            bound[sid] = conversation
            await sio.enter_room(sid, conversation, namespace=self.namespace)
            await sio.emit("session_confirm", token, room=sid, namespace=self.namespace)
            return conversation

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            # engineio's Sanic driver says REMOTE_ADDR 127.0.0.1 for everyone: ask Sanic's request.
            request = environ.get("sanic.request")
            addresses[sid] = limits.client_address(
                getattr(request, "ip", None) or environ.get("REMOTE_ADDR"), getattr(request, "headers", None)
            )
            # As Rasa's own: with a jwt_key in the credentials, only a valid JWT connects.
            if not self.jwt_key:
                return True
            token = auth.get("token") if isinstance(auth, dict) else None
            return isinstance(token, str) and decode_bearer_token(token, self.jwt_key, self.jwt_algorithm) is not None

        @sio.on("disconnect", namespace=self.namespace)
        async def disconnect(sid: Text, reason: Any = None) -> None:  # 5.12+ passes why
            bound.pop(sid, None)
            addresses.pop(sid, None)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, data: Optional[Dict] = None) -> None:  # a bare emit has no data
            await start_session(sid, (data or {}).get("session_id") if isinstance(data, dict) else None)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, data: Dict) -> None:
            if not isinstance(data, dict):
                return
            # The socket's own conversation, never the session_id the message names.
            conversation = bound.get(sid) or await start_session(sid, None)
            metadata = data.get(self.metadata_key) or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            await on_new_message(
                UserMessage(
                    str(data.get("message") or ""),
                    SocketIOOutput(sio, self.bot_message_evt),
                    conversation,
                    input_channel=self.name(),
                    metadata=limits.with_address(metadata, addresses.get(sid)),
                )
            )

        return socketio_webhook
