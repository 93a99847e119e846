"""Telegram: Rasa's connector, pointed at a configurable Bot API server.

Credentials (see scripts/credentials.py)::

    channels.telegram.TelegramInput:
      access_token: "123456:ABC..."      # from @BotFather
      verify: "musaed_bot"               # the bot's username
      webhook_url: "https://example.org/webhooks/telegram/webhook"
      api_url: "https://api.telegram.org"   # optional; else env TELEGRAM_API_URL
      secret_token: "..."                # optional (else derived from the token); see below

What differs from ``rasa.core.channels.telegram``:

- The Bot API base URL comes from ``api_url`` or the ``TELEGRAM_API_URL``
  environment variable (default https://api.telegram.org), so tests and a
  self-hosted Bot API server work.
- The webhook is registered once, in Sanic's own event loop, before the server
  starts (Rasa's version runs it in a throw-away loop and leaves the bot's
  HTTP session bound to it; it also re-registers on every
  ``get_output_channel()``). A failure is logged, not fatal: the other
  channels keep working and ``GET /webhooks/telegram/set_webhook`` retries.
- ``/start`` (also ``/start@bot`` and deep links ``/start xyz``) is the
  ``greet`` intent, and so is the conversation's restart greeting.
- Buttons are inline keyboards: one row when they are few and short, else one
  button per row (a response's ``button_type`` still wins). Pressed buttons
  are acknowledged (answerCallbackQuery) so the client's spinner stops.
- Texts longer than Telegram's 4096 characters are sent in pieces.
- Every update must carry the webhook's secret token in
  ``X-Telegram-Bot-Api-Secret-Token`` or gets 403 and reaches no
  conversation: ``secret_token`` when set, else one derived from the bot
  token (HMAC-SHA256), registered with setWebhook either way. Without it,
  anyone could POST a forged Update with someone's chat id.
- The conversation is ``telegram:<chat id>`` (channels/ids.py): no other
  channel reaches it.
- A failure while handling an update is logged and answered 200, so Telegram
  does not redeliver the same update again and again.
- An ``update_id`` seen in the last day, or a message (or edit) dated more
  than 5 minutes ago, is acknowledged and not handled: a captured update
  cannot be replayed (channels/replays.py). A button press carries the date
  of the message the button is on, which may be old: its update id is what
  stops a replay. Each chat is limited in size and rate (channels/limits.py).
- A photo (its largest size) or a file is fetched with getFile and the Bot
  API's file address, at most the size allowed (a larger one, as Telegram
  states it, is not fetched at all), and checked and kept
  (channels/documents.py); a video, voice note, sticker and the like is
  answered as a file of a type not taken. Captions and file names are not read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

import aiohttp
from aiogram.bot.api import TelegramAPIServer
from aiogram.types import Update
from aiogram.utils.exceptions import TelegramAPIError
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.telegram import TelegramInput as RasaTelegramInput
from rasa.core.channels.telegram import TelegramOutput as RasaTelegramOutput
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.core.constants import USER_INTENT_RESTART
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import care_delivery, contacts, limits, replays
from channels import documents as channel_documents
from channels._text import split_long
from channels.handover_gate import TITLE_KEY, gate
from channels.ids import conversation_id, external_id
from channels.never_silent import never_silent
from musaed import bidi, documents, settings

logger = logging.getLogger(__name__)

MAX_TEXT = 4096  # Telegram's limit for one message
START_COMMAND = "/start"
GREET = INTENT_MESSAGE_PREFIX + "greet"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Up to this many buttons, with this many title characters in all, share one row.
ONE_ROW_BUTTONS = 3
ONE_ROW_CHARS = 30


def resolve_api_url(configured: Optional[str] = None) -> str:
    """The Bot API base URL: configured, else $TELEGRAM_API_URL, else Telegram's own."""
    return (configured or settings.TELEGRAM_API_URL.get()).rstrip("/")


def derived_secret_token(access_token: str) -> str:
    """The webhook secret when none is configured: unguessable without the bot
    token, the same on every replica, and in Telegram's alphabet (hex)."""
    return hmac.new(str(access_token).encode(), b"musaed-telegram-webhook", hashlib.sha256).hexdigest()


def as_user_text(text: str) -> str:
    """What the bot should read for a message: ``/start`` becomes the greet intent."""
    stripped = text.strip()
    command = stripped.split(maxsplit=1)[0].split("@", 1)[0] if stripped else ""
    return GREET if command == START_COMMAND else stripped


def button_title(payload: Dict[str, Any]) -> Optional[str]:
    """The title of the inline button a callback query pressed, from the message it was on."""
    query = payload.get("callback_query") or {}
    rows = ((query.get("message") or {}).get("reply_markup") or {}).get("inline_keyboard") or []
    for row in rows:
        for button in row:
            if isinstance(button, dict) and button.get("callback_data") == query.get("data"):
                return button.get("text")
    return None


class TelegramOutput(RasaTelegramOutput):
    """Rasa's Telegram output, talking to the configured Bot API server."""

    def __init__(self, access_token: Optional[Text], api_url: Optional[Text] = None) -> None:
        super().__init__(access_token)
        self.server = TelegramAPIServer.from_base(resolve_api_url(api_url))

    async def close_session(self) -> None:
        """Close the HTTP session (aiogram 2's ``close()`` does too, with a deprecation warning)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        # Mixed lines read right in Telegram's apps too (musaed/bidi.py).
        if message.get("text"):
            message = {**message, "text": bidi.isolate(message["text"])}
        # The conversation is telegram:<chat id>; the Bot API wants the chat id.
        await super().send_response(external_id("telegram", recipient_id), message)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        for paragraph in text.strip().split("\n\n"):  # as Rasa's connector does
            for piece in split_long(paragraph, MAX_TEXT):
                await self.send_message(recipient_id, piece)

    async def send_text_with_buttons(
        self,
        recipient_id: Text,
        text: Text,
        buttons: List[Dict[Text, Any]],
        button_type: Optional[Text] = None,
        **kwargs: Any,
    ) -> None:
        if button_type is None:
            few_and_short = (
                len(buttons) <= ONE_ROW_BUTTONS and sum(len(str(b.get("title", ""))) for b in buttons) <= ONE_ROW_CHARS
            )
            button_type = "inline" if few_and_short else "vertical"
        pieces = split_long(text or "", MAX_TEXT) or ["…"]
        for piece in pieces[:-1]:
            await self.send_message(recipient_id, piece)
        await super().send_text_with_buttons(recipient_id, pieces[-1], buttons, button_type=button_type, **kwargs)

    async def download(self, file_id: str, limit: int) -> bytes:
        """A file the person sent, by its file_id: getFile, then the file's address (which holds
        the bot token: never logged). TooLarge past `limit`, DownloadFailed when refused."""
        try:
            info = await self.get_file(file_id)
        except TelegramAPIError as error:
            raise channel_documents.DownloadFailed(type(error).__name__) from None
        if info.file_size and info.file_size > limit:
            raise channel_documents.TooLarge()
        if not info.file_path:
            raise channel_documents.DownloadFailed("no file_path")
        async with self.session.get(self.get_file_url(info.file_path)) as reply:
            if reply.status != 200:
                raise channel_documents.DownloadFailed(f"HTTP {reply.status}")
            return await channel_documents.read_at_most(reply.content, limit)


# The kinds of file Telegram sends that are not taken (answered as such, never fetched).
OTHER_FILES = ("video", "audio", "voice", "video_note", "animation", "sticker")


def file_of(payload: Dict[str, Any]) -> Optional[Tuple[str, Optional[str], Optional[int]]]:
    """(chat id, file_id or None for a kind not taken, its size as Telegram states it) of an
    update's photo or file, or None when the update carries none."""
    message = payload.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("chat"), dict):
        return None
    chat = str(message["chat"].get("id"))
    photos = message.get("photo")
    if isinstance(photos, list) and photos:
        largest = max(photos, key=lambda p: (p.get("width", 0) * p.get("height", 0), p.get("file_size") or 0))
        return chat, largest.get("file_id"), largest.get("file_size")
    document = message.get("document")
    if isinstance(document, dict):
        return chat, document.get("file_id"), document.get("file_size")
    if any(isinstance(message.get(kind), dict) for kind in OTHER_FILES):
        return chat, None, None
    return None


class TelegramInput(RasaTelegramInput):
    """Rasa's Telegram input channel with a configurable Bot API server (see module doc)."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        return cls(
            credentials.get("access_token"),
            credentials.get("verify"),
            credentials.get("webhook_url"),
            api_url=credentials.get("api_url"),
            secret_token=credentials.get("secret_token"),
        )

    def __init__(
        self,
        access_token: Optional[Text],
        verify: Optional[Text],
        webhook_url: Optional[Text],
        debug_mode: bool = False,
        api_url: Optional[Text] = None,
        secret_token: Optional[Text] = None,
    ) -> None:
        super().__init__(access_token, verify, webhook_url, debug_mode=debug_mode)
        self.api_url = resolve_api_url(api_url)
        self.secret_token = secret_token or derived_secret_token(access_token or "")
        self._output: Optional[TelegramOutput] = None
        self._username: Optional[str] = None

    def get_output_channel(self) -> TelegramOutput:
        """The bot (one per channel); unlike Rasa's, this does not call setWebhook."""
        if self._output is None:
            self._output = TelegramOutput(self.access_token, self.api_url)
        return self._output

    async def set_webhook(self) -> bool:
        """Register `webhook_url` and its secret token with Telegram."""
        # aiogram 2.15 predates secret_token (Bot API 6.1): send it as a raw call.
        return bool(
            await self.get_output_channel().request(
                "setWebhook", {"url": self.webhook_url, "secret_token": self.secret_token}
            )
        )

    async def bot_username(self) -> Optional[str]:
        """The bot's username from getMe, asked once and then remembered."""
        if self._username is None:
            me = await self.get_output_channel().get_me()
            self._username = me.username
        return self._username

    def _authentic(self, request: Request) -> bool:
        given = request.headers.get(SECRET_HEADER, "")
        return hmac.compare_digest(given.encode(), self.secret_token.encode())

    @staticmethod
    def _stale(payload: Dict[str, Any]) -> bool:
        """Whether the update's message (or edit) was written too long ago to be handled now."""
        for kind in ("message", "edited_message"):
            message = payload.get(kind)
            if isinstance(message, dict):
                return replays.too_old(message.get("edit_date") or message.get("date"))
        return False  # a button press: see the module doc

    def _user_text(self, update: Update) -> Optional[Tuple[str, str]]:
        """(chat id, text) of an update, or None when there is nothing for the bot to read."""
        if self._is_button(update):
            message, text = update.callback_query.message, update.callback_query.data
        elif self._is_edited_message(update):
            message, text = update.edited_message, update.edited_message.text
        elif update.message is not None:
            message = update.message
            if self._is_user_message(message):
                text = message.text
            elif self._is_location(message):
                text = json.dumps({"lng": message.location.longitude, "lat": message.location.latitude})
            else:
                return None  # stickers, photos, ...: nothing to read
        else:
            return None
        if message is None or message.chat is None or not text:
            return None
        return str(message.chat.id), as_user_text(text)

    async def _file(
        self,
        sent_file: Tuple[str, Optional[str], Optional[int]],
        out_channel: TelegramOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        """A photo or file into the chat's conversation: fetched, checked and kept, or refused."""
        chat, file_id, size = sent_file
        conversation = conversation_id(self.name(), chat)
        limit = documents.max_bytes()
        if file_id is None:
            text, metadata = channel_documents.refused(documents.NOT_ALLOWED)
        elif size and size > limit:
            text, metadata = channel_documents.refused(documents.TOO_LARGE)  # not fetched at all
        else:
            text, metadata = await channel_documents.fetched(
                lambda most: out_channel.download(file_id, most), conversation
            )
        try:
            await on_new_message(
                UserMessage(text, out_channel, conversation, input_channel=self.name(), metadata=metadata)
            )
        except Exception:  # noqa: BLE001 - log it, and do not make Telegram redeliver
            logger.exception("Failed to handle a Telegram file in %s", conversation)
            if self.debug_mode:
                raise

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # No message goes unanswered; long ones and bursts are answered briefly (channels/limits.py).
        # While an agent holds the conversation the bot is silent (channels/handover_gate.py).
        on_new_message = limits.guard(gate(never_silent(on_new_message)))
        telegram_webhook = Blueprint("musaed_telegram_webhook", __name__)
        out_channel = self.get_output_channel()

        async def to_chat(message: Dict[str, Any]) -> None:
            await out_channel.send_response(message["conversation"], care_delivery.messenger_reply(message))

        @telegram_webhook.listener("after_server_start")
        async def deliver_agents_messages(app: Any, _: Any) -> None:
            app.add_task(care_delivery.deliver_forever(self.name(), to_chat))

        @telegram_webhook.listener("before_server_start")
        async def register_webhook(*_: Any) -> None:
            try:
                if await self.set_webhook():
                    logger.info("Telegram webhook set to %s", self.webhook_url)
                else:
                    logger.error("Telegram refused the webhook %s", self.webhook_url)
            except (TelegramAPIError, aiohttp.ClientError, OSError) as error:
                logger.error(
                    "Could not set the Telegram webhook (%s); Telegram messages will not "
                    "arrive until GET /webhooks/%s/set_webhook succeeds.",
                    error,
                    self.name(),
                )

        @telegram_webhook.listener("after_server_stop")
        async def close_session(*_: Any) -> None:
            await out_channel.close_session()

        @telegram_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @telegram_webhook.route("/set_webhook", methods=["GET", "POST"])
        async def set_webhook(_: Request) -> HTTPResponse:
            try:
                ok = await self.set_webhook()
            except (TelegramAPIError, aiohttp.ClientError, OSError) as error:
                logger.warning("Telegram webhook setup failed: %s", error)
                ok = False
            return response.text("Webhook setup successful" if ok else "Invalid webhook")

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def message(request: Request) -> HTTPResponse:
            if not self._authentic(request):
                logger.warning("Telegram update without the right secret token refused")
                return response.text("forbidden", status=403)
            payload = request.json
            if isinstance(payload, str):
                payload = json.loads(payload)
            if not isinstance(payload, dict):
                return response.text("bad request", status=400)
            update = Update(**payload)
            try:
                username = await self.bot_username()
            except (TelegramAPIError, aiohttp.ClientError, OSError) as error:
                logger.error("Telegram getMe failed: %s", error)
                return response.text("unavailable", status=503)  # Telegram retries later
            if username != self.verify:
                logger.error("Telegram bot is @%s but credentials say verify: %s", username, self.verify)
                return response.text("failed")

            # After getMe: a 503 above makes Telegram retry, which must not look like a replay.
            if self._stale(payload):
                logger.warning("Telegram update %s dated over 5 minutes ago: not handled", update.update_id)
                return response.text("success")
            if not await replays.first_time(self.name(), update.update_id):
                logger.warning("Telegram update %s delivered again: not handled", update.update_id)
                return response.text("success")
            sent_file = file_of(payload)
            if sent_file is not None:
                # A file is the person writing too (notifications: a chat that blocked the bot and writes again).
                await contacts.wrote(conversation_id(self.name(), sent_file[0]), payload["message"].get("date"))
                await self._file(sent_file, out_channel, on_new_message)
                return response.text("success")
            found = self._user_text(update)
            if found is None:
                return response.text("success")
            sender_id, text = found
            # For notifications: a chat that blocked the bot and writes again is written to again.
            sent_at = (payload.get("message") or payload.get("edited_message") or {}).get("date")
            await contacts.wrote(conversation_id(self.name(), sender_id), sent_at)
            if self._is_button(update):
                try:  # stop the client's progress spinner on the pressed button
                    await out_channel.answer_callback_query(update.callback_query.id)
                except (TelegramAPIError, aiohttp.ClientError, OSError) as error:
                    logger.debug("answerCallbackQuery failed: %s", error)
            texts = [text]
            if text == INTENT_MESSAGE_PREFIX + USER_INTENT_RESTART:
                texts.append(GREET)  # Rasa's connector sends /start after a restart
            metadata = self.get_metadata(request)
            title = button_title(payload) if self._is_button(update) else None
            if title:  # the agent reads the button's title, not its payload
                metadata = {**(metadata or {}), TITLE_KEY: title}
            try:
                for each in texts:
                    await on_new_message(
                        UserMessage(
                            each,
                            out_channel,
                            conversation_id(self.name(), sender_id),
                            input_channel=self.name(),
                            metadata=metadata,
                        )
                    )
            except Exception:  # noqa: BLE001 - log it, and do not make Telegram redeliver
                logger.exception("Failed to handle Telegram update %s", update.update_id)
                if self.debug_mode:
                    raise
            return response.text("success")

        return telegram_webhook
