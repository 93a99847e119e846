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
- The store keeps each session's state (``web_sessions``, migration 007), so
  every replica agrees: «محادثة جديدة» ends the old session for good (the
  widget sends its token as ``end``), and a session idle for
  ``MUSAED_WEB_SESSION_IDLE_MINUTES`` (default 60, Rasa's own session
  length) expires. An ended or expired token gets a new, empty
  conversation, and a socket still bound to one is moved to a new session
  at its next message.
- The browser keeps only the token and the language: no transcript. A page
  that loads with a live token asks for ``history`` and the server sends the
  conversation's messages from the tracker store (``session_history``).
- Only the configured web origins (``MUSAED_WEB_ORIGINS``,
  musaed/web_security.py) may open a socket from a browser, and every
  response of the Rasa server carries the security headers and no version.
- A document (issue 31) comes as ``POST /webhooks/socketio/document``, the
  file's bytes as the body, the session token as ``Authorization: Bearer``:
  from a configured origin only, for a live session only, read no further
  than the size allowed. It is checked and kept (channels/documents.py) and
  its message goes into the session's conversation, whose answer reaches
  the widget on its socket; the HTTP answer says only received or refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Text, Tuple

from rasa.core.channels.channel import UserMessage, decode_bearer_token
from rasa.core.channels.socketio import SocketBlueprint, SocketIOOutput
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic_cors.core import SANIC_CORS_EVALUATED
from socketio import AsyncServer

from channels import care_delivery, limits
from channels import documents as channel_documents
from channels.handover_gate import TITLE_KEY, gate
from channels.ids import conversation_id
from channels.never_silent import never_silent
from musaed import bidi, documents, handover, keys, settings, store, web_security

logger = logging.getLogger(__name__)

CHANNEL = "web"
SECRET_FILE = "session.secret"
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{64})$")
# A document's body declared this much past the limit is refused unread (the widget sends at most one
# byte past it; a body a little over is read up to the limit, so the browser is not cut off mid-send).
UNREAD_PAST = 1024 * 1024
# A live session's last_seen is written at most this often (not at every message).
TOUCH_EVERY = timedelta(minutes=1)


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


def idle_minutes(env: Optional[Dict[str, str]] = None) -> float:
    setting = settings.WEB_SESSION_IDLE_MINUTES
    value = setting.get(env)
    minutes = float(value if value.strip() else setting.default)
    if minutes <= 0:
        raise ValueError(f"{setting.name} must be a positive number of minutes, not {value!r}")
    return minutes


def session_key(session: str) -> str:
    """What the store keeps of a session id: its hash (the id names a conversation)."""
    return hashlib.sha256(b"musaed-web-session:" + session.encode("ascii")).hexdigest()


class Sessions:
    """The web sessions' state in the application store, shared by every replica.
    Blocking calls: the channel runs them in a thread."""

    def __init__(self, idle: timedelta) -> None:
        self.idle = idle

    def start(self, session: str) -> None:
        store.start_web_session(store.open_db(), session_key(session), store.now_iso())

    def live(self, session: str) -> bool:
        """Not ended and not idle too long; a live one is seen now."""
        db, now = store.open_db(), datetime.now(timezone.utc)
        row = store.live_web_session(db, session_key(session), store.now_iso(now - self.idle))
        if row is None:
            return False
        if row["last_seen"] < store.now_iso(now - TOUCH_EVERY):
            store.touch_web_session(db, session_key(session), store.now_iso(now))
        return True

    def end(self, session: str) -> None:
        store.end_web_session(store.open_db(), session_key(session), store.now_iso())


# What an action adds to a message that the widget uses (actions/turn.py ASKS, actions/requests.py):
# the slot the message asks for (the keyboard for an id or a code) and a receipt's text.
WIDGET_EXTRAS = ("asks", "receipt")


class WidgetOutput(SocketIOOutput):
    """Rasa's socket.io output with mixed lines isolated (musaed/bidi.py) and the widget's extras."""

    _extras: Dict[str, Any] = {}

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        message = dict(message)
        self._extras = {k: message.pop(k) for k in WIDGET_EXTRAS if message.get(k)}
        if message.get("text"):
            message["text"] = bidi.isolate(message["text"])
        await super().send_response(recipient_id, message)

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        await super()._send_message(socket_id, {**response, **self._extras})


class _Recorder(WidgetOutput):
    """Rasa's socket.io output, kept instead of sent: a stored bot message becomes exactly
    the messages the widget received live (texts split at blank lines, buttons on the last)."""

    def __init__(self) -> None:
        self.sent: List[Dict[str, Any]] = []

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        self.sent.append({**response, **self._extras})

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        pass  # the widget shows no custom messages


async def transcript(events: List[Any], live: Sequence[Tuple[float, Dict[str, Any]]] = ()) -> List[Dict[str, Any]]:
    """The widget's entries for a conversation's events, as it showed them live: what the
    person said (a button's title for its payload) and the bot's messages with their
    buttons and images; `live`, (time, entry) of a live chat with an agent the bot's
    events lack (musaed/handover.py), in their place in time."""
    entries: List[Dict[str, Any]] = []
    titles: Dict[str, str] = {}  # the latest question's payloads -> their titles
    recorder = _Recorder()
    waiting = list(live)
    for event in events:
        while waiting and waiting[0][0] <= (getattr(event, "timestamp", None) or 0):
            entries.append(waiting.pop(0)[1])
        if isinstance(event, UserUttered):
            text = event.text or ""
            # A file stands as its title (its type and size: channels/documents.py), not its reference.
            title = (event.metadata or {}).get(TITLE_KEY) if text.startswith("/inform{") else None
            shown = title if isinstance(title, str) and title else titles.get(text, text)
            entries.append({"from": "user", "text": shown, "buttons": []})
        elif isinstance(event, BotUttered):
            recorder.sent = []
            await recorder.send_response("", event.message())
            for sent in recorder.sent:
                buttons = [
                    {"title": b.get("title", ""), "payload": b.get("payload", "")}
                    for b in (sent.get("quick_replies") or sent.get("buttons") or [])
                ]
                if buttons:
                    titles = {b["payload"]: b["title"] for b in buttons}
                attachment = sent.get("attachment") or {}
                image = attachment.get("payload", {}).get("src") if attachment.get("type") == "image" else None
                entry = {"from": "bot", "text": sent.get("text") or "", "buttons": buttons, "image": image}
                entries.append({**entry, **{k: sent[k] for k in WIDGET_EXTRAS if k in sent}})
    return entries + [entry for _, entry in waiting]


class _Blueprint(SocketBlueprint):
    """Rasa's socket.io blueprint that also gives the whole Rasa server its security headers
    (musaed/web_security.py), takes the version out of its "Hello from Rasa: 3.6.21",
    and remembers the app (its agent reads a conversation's history)."""

    def register(self, app: Any, options: Dict[Text, Any]) -> None:
        self.ctx.app = app
        socket_path = "/" + self.ctx.socketio_path.strip("/") + "/"

        async def socket_cors_by_engineio(request: Request) -> None:
            # The socket's CORS is engine.io's (it also refuses other origins): Sanic-CORS,
            # which Rasa applies to every path, would add a second Allow-Origin, which browsers refuse.
            if request.path.startswith(socket_path):
                setattr(request.ctx, SANIC_CORS_EVALUATED, "1")

        app.register_middleware(socket_cors_by_engineio, "request")
        app.register_middleware(_secure, "response")
        super().register(app, options)


_HEADERS = web_security.headers()


async def _secure(request: Request, response: Optional[HTTPResponse]) -> None:
    if response is None:
        return
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path == "/" and isinstance(response.body, bytes) and response.body.startswith(b"Hello from Rasa"):
        response.body = b"Hello from Musaed"


class SocketIOInput(RasaSocketIOInput):
    """Rasa's socket.io input with server-issued sessions (see module doc)."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # No message goes unanswered; long ones and bursts are answered briefly (channels/limits.py).
        # While an agent holds the conversation the bot is silent (channels/handover_gate.py).
        on_new_message = limits.guard(gate(never_silent(on_new_message)))
        # Only pages on the configured origins may open a socket from a browser (a client
        # that sends no Origin, not being a browser, is not asked). Rasa's own allows any.
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=web_security.web_origins())
        socketio_webhook = _Blueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio
        secret = keys.shared_secret(settings.SESSION_SECRET, SECRET_FILE)
        sessions = Sessions(timedelta(minutes=idle_minutes()))
        bound: Dict[str, str] = {}  # socket id -> its session id
        addresses: Dict[str, Optional[str]] = {}  # socket id -> the client's address (limits per address)

        async def to_widget(message: Dict[str, Any]) -> None:
            """An agent's message (marked with the agent's name), the care desk's or a notification, pushed."""
            reply = handover.as_reply(message)
            pushed: Dict[str, Any] = {"text": bidi.isolate(reply["text"])}
            if reply.get("buttons"):
                pushed["quick_replies"] = [{"content_type": "text", **b} for b in reply["buttons"]]
            if message["side"] == "agent":
                pushed["agent"] = message["agent"]
            # Whether a person holds the chat now: the widget shows no "typing" for the bot then.
            pushed["handover"] = message.get("handover_state")
            await sio.emit(self.bot_message_evt, pushed, room=message["conversation"], namespace=self.namespace)

        def here(conversation: str) -> bool:
            """Whether a widget in this conversation is connected to this replica."""
            return any(True for _ in sio.manager.get_participants(self.namespace or "/", conversation))

        @socketio_webhook.listener("after_server_start")
        async def deliver_agents_messages(app: Any, _: Any) -> None:
            # Agents' messages, and notifications to a widget open now (musaed/notifications.py).
            app.add_task(care_delivery.deliver_forever(CHANNEL, to_widget, here, notices=True))

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def history(conversation: str) -> List[Dict[str, Any]]:
            agent = getattr(getattr(socketio_webhook.ctx, "app", None), "ctx", None)
            agent = getattr(agent, "agent", None)
            if agent is None or agent.tracker_store is None:
                return []
            tracker = await agent.tracker_store.retrieve_full_tracker(conversation)
            live = await asyncio.to_thread(handover.history_entries, store.open_db(), conversation)
            return await transcript(list(tracker.events) if tracker else [], live)

        async def end_session(token: Any) -> None:
            session = session_of(token, secret)
            if session is None:
                return  # not ours: nothing to end
            # This replica's sockets in it hear no more of it (first: replies may still be on
            # their way); other replicas' find out at their next message.
            await sio.close_room(conversation_id(CHANNEL, session), namespace=self.namespace)
            for other, bound_session in list(bound.items()):
                if bound_session == session:
                    del bound[other]
            await asyncio.to_thread(sessions.end, session)

        async def start_session(sid: str, token: Any, with_history: bool = False) -> str:
            session = session_of(token, secret)
            going_on = session is not None and await asyncio.to_thread(sessions.live, session)
            if not going_on:  # not ours, ended or expired: a new, empty conversation
                token = issue_token(secret)
                session = session_of(token, secret)
                await asyncio.to_thread(sessions.start, session)
            assert session is not None
            conversation = conversation_id(CHANNEL, session)
            old = bound.get(sid)
            if old and old != session:
                await sio.leave_room(sid, conversation_id(CHANNEL, old), namespace=self.namespace)
            bound[sid] = session
            await sio.enter_room(sid, conversation, namespace=self.namespace)
            if going_on and with_history:  # before the confirm: the widget sends what waited after it
                await sio.emit("session_history", await history(conversation), room=sid, namespace=self.namespace)
            await sio.emit("session_confirm", token, room=sid, namespace=self.namespace)
            return session

        origins = set(web_security.web_origins())

        @socketio_webhook.route("/document", methods=["GET"])
        async def upload_limit(_: Request) -> HTTPResponse:
            """How many bytes a document may have: the widget sends no more than one past it."""
            return response.json({"max_bytes": documents.max_bytes()})

        @socketio_webhook.route("/document", methods=["POST"], stream=True)
        async def upload(request: Request) -> HTTPResponse:
            """A document from the widget into the session's conversation (see module doc)."""
            origin = request.headers.get("Origin")
            if origin is not None and origin not in origins:
                logger.warning("A document upload from an origin not configured refused")
                return response.json({"error": "origin"}, status=403)
            scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
            session = session_of(token.strip(), secret) if scheme.lower() == "bearer" else None
            if session is None or not await asyncio.to_thread(sessions.live, session):
                return response.json({"error": "session"}, status=401)
            conversation = conversation_id(CHANNEL, session)
            address = limits.client_address(request.ip, request.headers)
            declared = request.headers.get("Content-Length")
            limit = documents.max_bytes()
            if not channel_documents.has_room(conversation, address):
                text, metadata = channel_documents.refused(documents.UNREADABLE)  # the guard says slow down
            elif declared and declared.isdigit() and int(declared) > limit + UNREAD_PAST:
                text, metadata = channel_documents.refused(documents.TOO_LARGE)  # far too large: not read at all
            else:
                body, too_large = bytearray(), False
                while True:
                    chunk = await request.stream.read()
                    if chunk is None:
                        break
                    body += chunk
                    if len(body) > limit:
                        too_large = True
                        break
                if too_large:
                    text, metadata = channel_documents.refused(documents.TOO_LARGE)
                else:
                    text, metadata = await channel_documents.from_bytes(bytes(body), conversation)
            await on_new_message(
                UserMessage(
                    text,
                    WidgetOutput(sio, self.bot_message_evt),
                    conversation,
                    input_channel=self.name(),
                    metadata=limits.with_address(metadata, address),
                )
            )
            kept = channel_documents.DOCUMENT_KEY in metadata
            return response.json({"status": "received" if kept else "refused"}, status=200 if kept else 422)

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
            data = data if isinstance(data, dict) else {}
            if "end" in data:  # «محادثة جديدة»: the old session ends for good
                await end_session(data["end"])
            await start_session(sid, data.get("session_id"), with_history=data.get("history") is True)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, data: Dict) -> None:
            if not isinstance(data, dict):
                return
            # The socket's own conversation, never the session_id the message names; a socket
            # whose session was ended (another tab, another replica) or expired gets a new one.
            session = bound.get(sid)
            if session is None or not await asyncio.to_thread(sessions.live, session):
                session = await start_session(sid, None)
            conversation = conversation_id(CHANNEL, session)
            metadata = data.get(self.metadata_key) or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            await on_new_message(
                UserMessage(
                    str(data.get("message") or ""),
                    WidgetOutput(sio, self.bot_message_evt),
                    conversation,
                    input_channel=self.name(),
                    metadata=limits.with_address(metadata, addresses.get(sid)),
                )
            )

        return socketio_webhook
