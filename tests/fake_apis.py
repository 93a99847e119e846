"""Local stand-ins for the Telegram Bot API, Meta's Graph API (WhatsApp Cloud API) and an SMS gateway.

Each runs an aiohttp server on a free loopback port in its own thread, answers
like the real API and records every call, so tests can check what the bot sent.

For the notify worker's tests (issue 30) each can also be made to behave badly:
`fail_with` answers every send with that HTTP status; FakeTelegram's `blocked`
chats get Telegram's 403; FakeGraph with `enforce_window` refuses anything but a
template to a number that has not written in 24 hours (`last_inbound`), as
WhatsApp does (error 131047), and a template it has not approved (132001).
`hold` keeps each send waiting that many seconds before it is answered: a
sender that goes away meanwhile (killed mid-send) never gets the answer, and the
call is recorded in `abandoned`, not `calls`, as one the platform did not take.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from aiohttp import web

BOT_TOKEN = "123456789:AAFakeTokenForMusaedTests"
BOT_ID = 123456789
BOT_USERNAME = "musaed_test_bot"


class FakeApi:
    """An aiohttp app in a background thread that records the calls it gets."""

    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []
        self.abandoned: List[Dict[str, Any]] = []
        self.in_flight = 0
        self.fail_with: Optional[int] = None
        self.hold = 0.0
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._thread: Optional[threading.Thread] = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def record(self, call: Dict[str, Any]) -> None:
        with self._lock:
            self.calls.append({**call, "at": time.time()})

    async def held(self, request: web.Request, call: Dict[str, Any]) -> bool:
        """Wait `hold` seconds as a slow platform would; False when the sender left meanwhile
        (the call then goes to `abandoned`)."""
        if not self.hold:
            return True
        with self._lock:
            self.in_flight += 1
        try:
            await asyncio.sleep(self.hold)
        finally:
            with self._lock:
                self.in_flight -= 1
        if request.transport is None or request.transport.is_closing():
            with self._lock:
                self.abandoned.append({**call, "at": time.time()})
            return False
        return True

    def snapshot(self) -> List[Dict[str, Any]]:
        with self._lock:
            return list(self.calls)

    def wait_for(self, predicate: Callable[[List[Dict[str, Any]]], Any], timeout: float = 30) -> Any:
        """Poll the recorded calls until `predicate(calls)` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            found = predicate(self.snapshot())
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def start(self) -> "FakeApi":
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


class FakeTelegram(FakeApi):
    """The Bot API: getMe, setWebhook, sendMessage, sendPhoto, answerCallbackQuery, and a
    person's files: getFile and the file address (GET /file/bot<token>/<file_path>)."""

    def __init__(self, token: str = BOT_TOKEN, username: str = BOT_USERNAME) -> None:
        super().__init__()
        self.token = token
        self.username = username
        self._message_id = 1000
        self.files: Dict[str, bytes] = {}  # file_id -> the bytes a person sent
        self.blocked: set = set()  # chat ids (str) whose sends get Telegram's 403

    def add_file(self, file_id: str, data: bytes) -> str:
        """A file a person sent, as Telegram holds it (an update then names its file_id)."""
        self.files[file_id] = data
        return file_id

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/file/bot{token}/{path:.+}", self.download)
        app.router.add_route("*", "/bot{token}/{method}", self.handle)

    async def download(self, request: web.Request) -> web.Response:
        self.record({"method": "download", "token": request.match_info["token"], "params": {}})
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    def calls_to(self, method: str, chat_id: Any = None) -> List[Dict[str, Any]]:
        """Params of the recorded calls of `method` (to `chat_id`, when given)."""
        return [
            c["params"]
            for c in self.snapshot()
            if c["method"] == method and (chat_id is None or str(c["params"].get("chat_id")) == str(chat_id))
        ]

    def delivered(self, chat_id: Any = None) -> List[Dict[str, Any]]:
        """sendMessage calls the API took (answered 200), to `chat_id` when given."""
        return [
            c
            for c in self.snapshot()
            if c["method"] == "sendMessage"
            and c.get("status") == 200
            and (chat_id is None or str(c["params"].get("chat_id")) == str(chat_id))
        ]

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:  # aiogram posts form data (urlencoded, or multipart with files)
            params = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if "reply_markup" in params and isinstance(params["reply_markup"], str):
            params["reply_markup"] = json.loads(params["reply_markup"])
        call = {"method": method, "token": request.match_info["token"], "params": params}
        if method in ("sendMessage", "sendPhoto") and not await self.held(request, call):
            return web.json_response({"ok": False}, status=504)  # nobody is listening any more
        if method in ("sendMessage", "sendPhoto") and str(params.get("chat_id")) in self.blocked:
            self.record({**call, "status": 403})
            return web.json_response(
                {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, status=403
            )
        if method in ("sendMessage", "sendPhoto") and self.fail_with:
            self.record({**call, "status": self.fail_with})
            return web.json_response(
                {"ok": False, "error_code": self.fail_with, "description": "Internal Server Error"},
                status=self.fail_with,
            )
        self.record({**call, "status": 200})
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        if method == "getMe":
            return ok(
                {
                    "id": BOT_ID,
                    "is_bot": True,
                    "first_name": "Musaed",
                    "username": self.username,
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                }
            )
        if method in ("setWebhook", "answerCallbackQuery", "deleteWebhook"):
            return ok(True)
        if method == "getFile":
            file_id = params.get("file_id")
            if file_id not in self.files:
                return web.json_response(
                    {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}, status=400
                )
            size = len(self.files[file_id])
            return ok(
                {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "file_size": size,
                    "file_path": f"documents/{file_id}",
                }
            )
        if method in ("sendMessage", "sendPhoto"):
            self._message_id += 1
            message = {
                "message_id": self._message_id,
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Musaed", "username": self.username},
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "date": int(time.time()),
            }
            if method == "sendMessage":
                message["text"] = params.get("text", "")
                if "reply_markup" in params:
                    message["reply_markup"] = params["reply_markup"]
            else:
                message["photo"] = [
                    {
                        "file_id": "AgACAgQAAxkBAAIB",
                        "file_unique_id": "AQADx",
                        "width": 320,
                        "height": 240,
                        "file_size": 1024,
                    }
                ]
            return ok(message)
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found: method not found"}, status=404
        )


class FakeGraph(FakeApi):
    """The WhatsApp Cloud API's POST /{phone_number_id}/messages, and a person's media: GET
    /{version}/{media id} (the file's address, type, hash and size), then the file at that address."""

    def __init__(self, access_token: str, phone_number_id: str, enforce_window: bool = False) -> None:
        super().__init__()
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self._n = 0
        self.media: Dict[str, Tuple[bytes, str]] = {}  # media id -> (bytes, the type WhatsApp says)
        # WhatsApp's 24-hour rule: wa_id -> when (epoch seconds) the person last wrote.
        self.enforce_window = enforce_window
        self.last_inbound: Dict[str, float] = {}
        # The approved templates and the languages each is approved in.
        self.templates: Dict[str, set] = {"musaed_notice": {"ar", "en"}}

    def add_media(self, media_id: str, data: bytes, mime_type: str = "image/jpeg") -> str:
        self.media[media_id] = (data, mime_type)
        return media_id

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{phone_number_id}/messages", self.handle)
        app.router.add_post("/{version}/{phone_number_id}/messages", self.handle)  # /v19.0/...
        app.router.add_get("/media-files/{media_id}", self.media_file)
        app.router.add_get("/{version}/{media_id}", self.media_info)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.access_token}"

    async def media_info(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        self.record({"path": request.path, "authorization": request.headers.get("Authorization"), "json": {}})
        if not self._authorized(request):
            return web.json_response({"error": {"message": "Invalid OAuth access token.", "code": 190}}, status=401)
        if media_id not in self.media:
            return web.json_response({"error": {"message": "Unsupported get request.", "code": 100}}, status=400)
        data, mime_type = self.media[media_id]
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/media-files/{media_id}",
                "mime_type": mime_type,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            }
        )

    async def media_file(self, request: web.Request) -> web.Response:
        self.record({"path": request.path, "authorization": request.headers.get("Authorization"), "json": {}})
        if not self._authorized(request):
            return web.Response(status=401)
        found = self.media.get(request.match_info["media_id"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])

    def messages_to(self, wa_id: str) -> List[Dict[str, Any]]:
        """The message objects the bot sent to `wa_id`, in order."""
        return [c["json"] for c in self.snapshot() if c["json"].get("to") == wa_id]

    def media_calls(self) -> List[str]:
        """The paths of the media calls (the endpoint and the file), in order."""
        return [c["path"] for c in self.snapshot() if not c["path"].endswith("/messages")]

    def delivered(self, wa_id: str) -> List[Dict[str, Any]]:
        """The message objects the API took (answered 200) for `wa_id`, in order."""
        return [c["json"] for c in self.snapshot() if c["json"].get("to") == wa_id and c.get("status") == 200]

    def refusal(self, body: Dict[str, Any]) -> Optional[web.Response]:
        """What WhatsApp answers a message it does not take, or None."""

        def error(code: int, message: str, status: int = 400) -> web.Response:
            return web.json_response(
                {"error": {"message": message, "type": "OAuthException", "code": code}}, status=status
            )

        if self.fail_with:
            return error(1, "An unknown error occurred", self.fail_with)
        if body.get("type") == "template":
            template = body.get("template") or {}
            code = (template.get("language") or {}).get("code")
            if code not in self.templates.get(template.get("name"), set()):
                return error(132001, "Template name does not exist in the translation", 404)
            return None
        wrote = self.last_inbound.get(str(body.get("to")))
        if self.enforce_window and (wrote is None or time.time() - wrote > 24 * 3600):
            return error(131047, "Re-engagement message")
        return None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        call = {"path": request.path, "authorization": request.headers.get("Authorization"), "json": body}
        if not await self.held(request, call):
            return web.json_response({}, status=504)
        refused = self.refusal(body) if request.headers.get("Authorization") == f"Bearer {self.access_token}" else None
        self.record({**call, "status": refused.status if refused is not None else 200})
        if refused is not None:
            return refused
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return web.json_response(
                {
                    "error": {
                        "message": "Invalid OAuth access token.",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
                status=401,
            )
        if request.match_info["phone_number_id"] != self.phone_number_id:
            return web.json_response(
                {
                    "error": {
                        "message": "Unsupported post request.",
                        "type": "GraphMethodException",
                        "code": 100,
                    }
                },
                status=400,
            )
        self._n += 1
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                "messages": [{"id": f"wamid.FAKE{self._n:08d}"}],
            }
        )


class FakeSms(FakeApi):
    """An SMS gateway that takes one JSON POST {"to", "text"} per message (musaed/sms.py)."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/sms", self.handle)

    @property
    def sms_url(self) -> str:
        return f"{self.url}/sms"

    def sent_to(self, mobile: str) -> List[str]:
        """The texts the gateway took for `mobile`."""
        return [c["json"]["text"] for c in self.snapshot() if c["json"].get("to") == mobile and c["status"] == 200]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        call = {"authorization": request.headers.get("Authorization"), "json": body}
        if not await self.held(request, call):
            return web.json_response({}, status=504)
        status = self.fail_with or 200
        self.record({**call, "status": status})
        return web.json_response({"ok": status == 200}, status=status)
