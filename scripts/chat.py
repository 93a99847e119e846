"""`make chat`: talk to a running Musaed in the terminal, over Rasa's REST channel.

    python -m scripts.chat [--url http://localhost:5005] [--sender ID] [--no-shape]

Most terminals do not join Arabic letters or lay right-to-left text out, so by
default every line is shaped (arabic-reshaper) and put in display order
(python-bidi), one line at a time so that numbered steps stay on their own
lines.  Terminals with their own bidi support (e.g. some VTE or mlterm
set-ups) want the text as is: pass --no-shape.

Buttons are listed as [1], [2], …; typing a number sends that button's
payload.  /quit or Ctrl-D ends the conversation; so does Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Callable, List, Optional

import requests
from arabic_reshaper import reshape
from bidi.algorithm import get_display

from musaed import settings

QUIT = "/quit"
CONNECT_TIMEOUT = 5  # seconds to open a connection
REPLY_TIMEOUT = 120  # seconds to wait for the bot's answer (the model runs on CPU)

UNREACHABLE = "تعذّر الوصول إلى مساعد على {url} — تأكد أن الخادم يعمل (make run)."
HTTP_ERROR = "ردّ الخادم بخطأ {status}؛ حاول مرة أخرى."
TIMEOUT = "لم يصل رد خلال {seconds} ثانية؛ حاول مرة أخرى."
BAD_REPLY = "وصل رد غير مفهوم من الخادم."
WELCOME = "متصل بمساعد على {url}. اكتب سؤالك، أو رقم الزر لاختياره، و{quit} للخروج."
PROMPT = "أنت"


class Unreachable(Exception):
    """The server could not be reached at all."""


def shaper(enabled: bool) -> Callable[[str], str]:
    """A function that makes text readable on a terminal without bidi support.

    Each line is shaped and reordered on its own: the bidi algorithm works per
    paragraph, and reordering several lines together would mix them up.
    """
    if not enabled:
        return lambda text: text

    def shape(text: str) -> str:
        return "\n".join(get_display(reshape(line)) for line in text.split("\n"))

    return shape


def render(replies: List[dict], shape: Callable[[str], str]) -> tuple:
    """The lines to print for one turn of the bot, and the payloads its buttons send."""
    lines: List[str] = []
    payloads: List[str] = []
    for reply in replies:
        if reply.get("text"):
            lines.append(shape(reply["text"]))
        if reply.get("image"):
            lines.append(str(reply["image"]))
        for key in ("attachment", "custom"):
            if reply.get(key):
                lines.append(json.dumps(reply[key], ensure_ascii=False))
        for button in reply.get("buttons") or []:
            payloads.append(button.get("payload") or button.get("title") or "")
            title = button.get("title") or button.get("payload") or ""
            lines.append(f"  [{len(payloads)}] {shape(title)}")
    return lines, payloads


def choose(typed: str, payloads: List[str]) -> str:
    """What to send: a button's payload when `typed` is its number, else `typed`."""
    try:
        number = int(typed)  # also reads Arabic-Indic digits: "١"
    except ValueError:
        return typed
    if 1 <= number <= len(payloads):
        return payloads[number - 1]
    return typed


class Client:
    def __init__(self, url: str, sender: str) -> None:
        self.url = url.rstrip("/")
        self.webhook = f"{self.url}/webhooks/rest/webhook"
        self.sender = sender
        self.session = requests.Session()
        token = settings.REST_TOKEN.given()
        if token:  # the server then refuses REST calls without it
            self.session.headers["Authorization"] = f"Bearer {token}"

    def check(self) -> None:
        """Fail early, before the first prompt, when nothing answers at the URL."""
        try:
            self.session.get(f"{self.url}/", timeout=CONNECT_TIMEOUT)
        except requests.RequestException as e:  # refused, timed out, or a malformed URL
            raise Unreachable from e

    def say(self, message: str) -> List[dict]:
        try:
            r = self.session.post(
                self.webhook,
                json={"sender": self.sender, "message": message},
                timeout=(CONNECT_TIMEOUT, REPLY_TIMEOUT),
            )
        except requests.ConnectionError as e:
            raise Unreachable from e
        r.raise_for_status()
        replies = r.json()
        if not isinstance(replies, list):
            raise ValueError("the REST channel answers with a list")
        return [m for m in replies if isinstance(m, dict)]


def converse(client: Client, shape: Callable[[str], str]) -> int:
    prompt = shape(PROMPT) + "> "
    payloads: List[str] = []
    print(shape(WELCOME.format(url=client.url, quit=QUIT)), flush=True)
    while True:
        try:
            typed = input(prompt).strip()
        except EOFError:  # Ctrl-D
            print(flush=True)
            return 0
        if not typed:
            continue
        if typed == QUIT:
            return 0
        try:
            replies = client.say(choose(typed, payloads))
        except requests.Timeout:
            print(shape(TIMEOUT.format(seconds=REPLY_TIMEOUT)), file=sys.stderr, flush=True)
            continue
        except requests.HTTPError as e:
            print(shape(HTTP_ERROR.format(status=e.response.status_code)), file=sys.stderr, flush=True)
            continue
        except (ValueError, requests.RequestException):
            print(shape(BAD_REPLY), file=sys.stderr, flush=True)
            continue
        lines, payloads = render(replies, shape)
        print("\n".join(lines + [""]), flush=True)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Talk to Musaed in the terminal (Rasa REST channel).")
    p.add_argument("--url", default="http://localhost:5005", help="the Rasa server (default: %(default)s)")
    p.add_argument(
        "--sender", default=f"terminal-{uuid.uuid4().hex[:12]}", help="conversation id (default: a new random one)"
    )
    p.add_argument(
        "--no-shape", action="store_true", help="print Arabic as is, for terminals with their own bidi support"
    )
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    # Never die on a character the terminal's encoding lacks.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    shape = shaper(not args.no_shape)
    client = Client(args.url, args.sender)
    try:
        client.check()
        try:
            import readline  # noqa: F401  line editing and history for input()
        except ImportError:
            pass
        return converse(client, shape)
    except Unreachable:
        print(shape(UNREACHABLE.format(url=client.url)), file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: leave quietly
        print(flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
