"""WhatsApp Cloud API channel (Meta's Graph API).

Credentials (see scripts/credentials.py)::

    channels.whatsapp.WhatsAppInput:
      access_token: "EAAG..."            # a system-user token with whatsapp_business_messaging
      phone_number_id: "1234567890"      # the business number's id, not the number
      app_secret: "..."                  # the Meta app's secret: signs every webhook POST
      verify_token: "..."                # any string; typed into the app's webhook settings
      api_url: "https://graph.facebook.com/v19.0"   # optional

Routes, under /webhooks/whatsapp/:

- ``GET  webhook``: Meta's verification handshake. Answers ``hub.challenge``
  when ``hub.mode`` is ``subscribe`` and ``hub.verify_token`` matches; else 403.
- ``POST webhook``: first checks ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw
  body with the app secret, compared in constant time) and answers 403 without
  reading anything when it is missing or wrong. Then every text message, and
  every interactive button or list reply (its id, i.e. the button's payload
  such as ``/renew_national_id``, is what the bot reads), goes to Rasa.
  An image or a document is fetched through the Cloud API's media endpoint
  (``GET {api_url}/{media id}`` for its address and size, then the file, both
  with the token; never past the size allowed), checked and kept
  (channels/documents.py); audio, video and stickers are answered as files of
  a type not taken. Captions and file names are not read or kept.
  Delivery statuses and other message types are acknowledged and ignored. A
  message id seen in the last day, or a message sent more than 5 minutes ago,
  is acknowledged and not handled (Meta redelivers; a captured body must not
  be replayed): channels/replays.py. Each sender is limited in size and rate
  (channels/limits.py).
- ``GET  /``: health.

Replies go to ``POST {api_url}/{phone_number_id}/messages`` with the bearer
token: text (in pieces of at most 4096 characters), buttons as an interactive
``button`` message (at most 3, titles cut to 20 characters) or, with more than
3, an interactive ``list`` (up to 10 rows, titles cut to 24 characters with the
whole title as the row's description), images as image messages with a link.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Text
from urllib.parse import urlsplit

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import care_delivery, contacts, limits, replays
from channels import documents as channel_documents
from channels._text import shorten, split_long
from channels.handover_gate import TITLE_KEY, gate
from channels.ids import conversation_id, external_id
from channels.never_silent import never_silent
from musaed import bidi, catalogue, documents, language, settings

logger = logging.getLogger(__name__)

DEFAULT_API_URL = settings.WHATSAPP_API_URL.default  # else WHATSAPP_API_URL (scripts/credentials.py)
SIGNATURE_HEADER = "X-Hub-Signature-256"

# WhatsApp Cloud API limits.
MAX_TEXT = 4096
MAX_BODY = 1024  # interactive message body
MAX_BUTTONS = 3  # reply buttons
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_ROWS = 10  # list rows, over all sections
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ROW_ID = 200


def _labels(text: str) -> Dict[str, str]:
    """The catalogue's words in the language of `text` (the message they frame)."""
    return catalogue.load(language.detect(text or "") or language.ARABIC).labels


REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
# Messages that are files: those taken (fetched through the media endpoint), and those answered as not taken.
FILE_TYPES = ("image", "document")
OTHER_FILES = ("audio", "video", "sticker")


def _same_server(url: str, api_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(api_url)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def signature(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(app_secret: str, body: bytes, header: Optional[str]) -> bool:
    if not header or not app_secret:
        return False
    return hmac.compare_digest(signature(app_secret, body).encode(), header.strip().encode())


def _unique(titles: Iterable[str], limit: int) -> List[str]:
    """Titles cut to `limit`, made distinct (WhatsApp rejects repeated titles)."""
    out: List[str] = []
    for title in titles:
        candidate = shorten(title, limit) or "…"
        n = 2
        while candidate in out:
            suffix = f" {n}"
            candidate = shorten(title, limit - len(suffix)) + suffix
            n += 1
        out.append(candidate)
    return out


def button_message(text: str, buttons: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The ``interactive`` object for `buttons`: reply buttons for up to 3, else a list."""
    body = {"text": text}
    if len(buttons) <= MAX_BUTTONS:
        titles = _unique((b.get("title") or b.get("payload") or "" for b in buttons), MAX_BUTTON_TITLE)
        return {
            "type": "button",
            "body": body,
            "action": {
                "buttons": [
                    {
                        "type": "reply",
                        "reply": {"id": str(b.get("payload") or b.get("title"))[:MAX_BUTTON_ID], "title": title},
                    }
                    for b, title in zip(buttons, titles, strict=True)
                ]
            },
        }
    if len(buttons) > MAX_ROWS:
        logger.warning("WhatsApp lists hold %d rows: %d buttons dropped", MAX_ROWS, len(buttons) - MAX_ROWS)
        buttons = buttons[:MAX_ROWS]
    full = [" ".join(str(b.get("title") or b.get("payload") or "").split()) for b in buttons]
    rows = []
    for b, whole, title in zip(buttons, full, _unique(full, MAX_ROW_TITLE), strict=True):
        row = {"id": str(b.get("payload") or b.get("title"))[:MAX_ROW_ID], "title": title}
        if title != whole:  # cut: the whole title goes underneath
            row["description"] = shorten(whole, MAX_ROW_DESCRIPTION)
        rows.append(row)
    return {
        "type": "list",
        "body": body,
        # The button that opens a list, in the message's language.
        "action": {"button": _labels(text)["whatsapp_list_button"], "sections": [{"rows": rows}]},
    }


class _Session:
    """One aiohttp session per event loop, made on first use (it must be made inside the loop)."""

    def __init__(self) -> None:
        self._session: Optional[aiohttp.ClientSession] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT)
            self._loop = loop
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class WhatsAppOutput(OutputChannel):
    """Sends the bot's messages through the WhatsApp Cloud API."""

    @classmethod
    def name(cls) -> Text:
        return "whatsapp"

    def __init__(
        self,
        access_token: Text,
        phone_number_id: Text,
        api_url: Text = DEFAULT_API_URL,
        session: Optional[_Session] = None,
    ) -> None:
        self.access_token = access_token
        self.phone_number_id = str(phone_number_id)
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self._session = session or _Session()

    @property
    def messages_url(self) -> str:
        return f"{self.api_url}/{self.phone_number_id}/messages"

    async def close(self) -> None:
        await self._session.close()

    async def send(self, recipient_id: Text, message: Dict[str, Any]) -> Optional[Dict]:
        """POST one message; a refusal from the API is logged (with its reason), not raised.

        `recipient_id` is the conversation (``whatsapp:<wa_id>``) or the bare wa_id.
        """
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": external_id(self.name(), str(recipient_id)),
            **message,
        }
        headers = {"Authorization": f"Bearer {self.access_token}"}
        try:
            async with self._session.get().post(self.messages_url, json=payload, headers=headers) as resp:
                body = await resp.text()
                if resp.status >= 300:
                    logger.error(
                        "WhatsApp API refused a %s message (%s): %s", message.get("type"), resp.status, body[:1000]
                    )
                    return None
                return json.loads(body) if body else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            logger.error("WhatsApp API call failed: %r", error)
            return None

    async def download(self, media_id: str, limit: int) -> bytes:
        """A file the person sent: its address and size from the media endpoint, then the file
        itself, both with the token. TooLarge past `limit`, DownloadFailed when refused."""
        headers = {"Authorization": f"Bearer {self.access_token}"}
        session = self._session.get()
        async with session.get(f"{self.api_url}/{media_id}", headers=headers) as reply:
            if reply.status != 200:
                raise channel_documents.DownloadFailed(f"media endpoint HTTP {reply.status}")
            media = await reply.json(content_type=None)
        url = media.get("url") if isinstance(media, dict) else None
        # Over HTTPS (Meta's file host), or from the API's own server (a local one in tests).
        if not isinstance(url, str) or not (url.startswith("https://") or _same_server(url, self.api_url)):
            raise channel_documents.DownloadFailed("no file address")
        if isinstance(media.get("file_size"), int) and media["file_size"] > limit:
            raise channel_documents.TooLarge()
        async with session.get(url, headers=headers) as reply:
            if reply.status != 200:
                raise channel_documents.DownloadFailed(f"file HTTP {reply.status}")
            return await channel_documents.read_at_most(reply.content, limit)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        # Mixed lines read right in WhatsApp's apps too (musaed/bidi.py).
        if message.get("text"):
            message = {**message, "text": bidi.isolate(message["text"])}
        await super().send_response(recipient_id, message)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        for piece in split_long(text or "", MAX_TEXT):
            await self.send(recipient_id, {"type": "text", "text": {"preview_url": False, "body": piece}})

    async def send_text_with_buttons(
        self,
        recipient_id: Text,
        text: Text,
        buttons: List[Dict[Text, Any]],
        **kwargs: Any,
    ) -> None:
        if not buttons:
            await self.send_text_message(recipient_id, text)
            return
        text = (text or "").strip()
        if not text or len(text) > MAX_BODY:
            # The body of an interactive message is short: send the text on its own.
            if text:
                await self.send_text_message(recipient_id, text)
            text = _labels(text)["whatsapp_choose"]
        await self.send(recipient_id, {"type": "interactive", "interactive": button_message(text, buttons)})

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self.send(recipient_id, {"type": "image", "image": {"link": image}})

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        """A response's ``custom`` is a WhatsApp message object (``type`` and its part)."""
        message = dict(json_message)
        recipient_id = message.pop("to", recipient_id)
        await self.send(recipient_id, message)


class WhatsAppInput(InputChannel):
    """Receives WhatsApp Cloud API webhooks (see module doc)."""

    @classmethod
    def name(cls) -> Text:
        return "whatsapp"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        missing = [
            k for k in ("access_token", "phone_number_id", "app_secret", "verify_token") if not credentials.get(k)
        ]
        if missing:
            from rasa.shared.exceptions import RasaException

            raise RasaException(f"WhatsApp channel: credentials lack {', '.join(missing)}")
        return cls(
            access_token=str(credentials["access_token"]),
            phone_number_id=str(credentials["phone_number_id"]),
            app_secret=str(credentials["app_secret"]),
            verify_token=str(credentials["verify_token"]),
            api_url=credentials.get("api_url") or DEFAULT_API_URL,
        )

    def __init__(
        self,
        access_token: Text,
        phone_number_id: Text,
        app_secret: Text,
        verify_token: Text,
        api_url: Text = DEFAULT_API_URL,
    ) -> None:
        self.access_token = access_token
        self.phone_number_id = str(phone_number_id)
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.api_url = api_url
        self._session = _Session()

    def get_output_channel(self) -> WhatsAppOutput:
        return WhatsAppOutput(self.access_token, self.phone_number_id, self.api_url, session=self._session)

    @staticmethod
    def message_text(message: Dict[str, Any]) -> Optional[str]:
        """What the bot should read for one inbound message, or None to ignore it."""
        kind = message.get("type")
        if kind == "text":
            return (message.get("text") or {}).get("body")
        if kind == "interactive":
            interactive = message.get("interactive") or {}
            reply = interactive.get(interactive.get("type") or "") or {}
            if interactive.get("type") in ("button_reply", "list_reply"):
                return reply.get("id") or reply.get("title")
            return None
        if kind == "button":  # a template's quick-reply button
            button = message.get("button") or {}
            return button.get("payload") or button.get("text")
        return None

    @staticmethod
    def button_title(message: Dict[str, Any]) -> Optional[str]:
        interactive = message.get("interactive") or {}
        reply = interactive.get(interactive.get("type") or "") or {}
        return reply.get("title") if interactive.get("type") in ("button_reply", "list_reply") else None

    @staticmethod
    def media_of(message: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """{"id": media id, or None for a kind not taken} of an image or a file, or None."""
        kind = message.get("type")
        if kind in FILE_TYPES:
            return {"id": (message.get(kind) or {}).get("id")}
        if kind in OTHER_FILES:
            return {"id": None}
        return None

    def inbound(self, payload: Dict[str, Any]) -> List[Dict[str, Any]]:
        """(sender, text or media, metadata) of each message for our number in a webhook payload."""
        found = []
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            return found
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                if change.get("field") != "messages":
                    continue
                value = change.get("value") or {}
                number = str((value.get("metadata") or {}).get("phone_number_id") or "")
                if number and number != self.phone_number_id:
                    logger.warning("WhatsApp message for another number (%s) ignored", number)
                    continue
                names = {c.get("wa_id"): (c.get("profile") or {}).get("name") for c in value.get("contacts") or []}
                for message in value.get("messages") or []:
                    text = self.message_text(message)
                    media = self.media_of(message)
                    sender = message.get("from")
                    if not (text or media) or not sender:
                        logger.debug("WhatsApp %s message ignored", message.get("type"))
                        continue
                    found.append(
                        {
                            "sender": str(sender),
                            "text": text,
                            "media": media,
                            "message_id": message.get("id"),
                            "metadata": {
                                "whatsapp": {
                                    "message_id": message.get("id"),
                                    "timestamp": message.get("timestamp"),
                                    "profile_name": names.get(sender),
                                    "phone_number_id": self.phone_number_id,
                                },
                                # A button's title: what the agent reads instead of its payload.
                                TITLE_KEY: self.button_title(message),
                            },
                        }
                    )
        return found

    @staticmethod
    async def _file_message(media: Dict[str, Any], out_channel: WhatsAppOutput, conversation: str):
        media_id = media.get("id")
        if not media_id:
            return channel_documents.refused(documents.NOT_ALLOWED)
        return await channel_documents.fetched(lambda most: out_channel.download(str(media_id), most), conversation)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # No message goes unanswered; long ones and bursts are answered briefly (channels/limits.py).
        # While an agent holds the conversation the bot is silent (channels/handover_gate.py).
        on_new_message = limits.guard(gate(never_silent(on_new_message)))
        whatsapp_webhook = Blueprint("musaed_whatsapp_webhook", __name__)

        async def to_chat(message: Dict[str, Any]) -> None:
            await self.get_output_channel().send_response(
                message["conversation"], care_delivery.messenger_reply(message)
            )

        @whatsapp_webhook.listener("after_server_start")
        async def deliver_agents_messages(app: Any, _: Any) -> None:
            app.add_task(care_delivery.deliver_forever(self.name(), to_chat))

        @whatsapp_webhook.listener("after_server_stop")
        async def close_session(*_: Any) -> None:
            await self._session.close()

        @whatsapp_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @whatsapp_webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            mode = request.args.get("hub.mode")
            token = request.args.get("hub.verify_token") or ""
            challenge = request.args.get("hub.challenge") or ""
            if mode == "subscribe" and hmac.compare_digest(token.encode(), self.verify_token.encode()):
                return response.text(challenge)
            logger.warning("WhatsApp webhook verification refused")
            return response.text("forbidden", status=403)

        @whatsapp_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.body or b""
            if not signature_ok(self.app_secret, body, request.headers.get(SIGNATURE_HEADER)):
                logger.warning("WhatsApp webhook with a missing or wrong signature refused")
                return response.text("forbidden", status=403)
            try:
                payload = json.loads(body)
            except ValueError:
                return response.text("bad request", status=400)

            out_channel = self.get_output_channel()
            for message in self.inbound(payload):
                if replays.too_old(message["metadata"]["whatsapp"]["timestamp"]):
                    logger.warning("WhatsApp message %s sent over 5 minutes ago: not handled", message["message_id"])
                    continue
                if not await replays.first_time(self.name(), message["message_id"]):
                    logger.warning("WhatsApp message %s delivered again: not handled", message["message_id"])
                    continue
                # The conversation says WhatsApp: no other channel reaches it.
                conversation = conversation_id(self.name(), message["sender"])
                text, metadata = message["text"], message["metadata"]
                # For notifications: WhatsApp's 24-hour window runs from the person's last message.
                await contacts.wrote(conversation, message["metadata"]["whatsapp"]["timestamp"])
                try:
                    if message["media"] is not None:  # a file: fetched, checked and kept, or refused
                        text, about_file = await self._file_message(message["media"], out_channel, conversation)
                        metadata = {**metadata, **about_file}
                    await on_new_message(
                        UserMessage(
                            text,
                            out_channel,
                            conversation,
                            input_channel=self.name(),
                            message_id=message["message_id"],
                            metadata=metadata,
                        )
                    )
                except Exception:  # noqa: BLE001 - log; a 5xx would make Meta redeliver
                    logger.exception("Failed to handle WhatsApp message %s", message["message_id"])
            return response.text("ok")

        return whatsapp_webhook
