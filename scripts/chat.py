"""`make chat`: talk to a running Musaed in the terminal, over Rasa's REST channel.

    python -m scripts.chat [--url http://localhost:5005] [--sender ID] [--no-shape]

Most terminals neither join Arabic letters nor lay right-to-left text out, so
by default the client does it: each line of a reply is wrapped by words to the
terminal's width first, and only then is each row shaped (arabic-reshaper) and
put in display order (python-bidi) with the direction of the whole line;
right-to-left rows are right-aligned.  A terminal that wrapped an already
reordered line would show its last words first.  What the person typed in
Arabic is shown again, after Enter, in reading order as "أنت: …".  Terminals
with their own bidi support (e.g. some VTE or mlterm set-ups) want the text as
is: pass --no-shape (lines are still wrapped by words).

Buttons are listed as [1], [2], …; typing a number sends that button's
payload.  /quit or Ctrl-D ends the conversation; so does Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import unicodedata
import uuid
from typing import Callable, List, Optional, TextIO, Tuple

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

# Columns left free at the right edge: a row that fills the last column makes
# some terminals wrap (or leave the cursor) where the next row should start.
MARGIN = 1
MIN_WIDTH = 10
RTL = ("R", "AL")  # bidi classes of Arabic and Hebrew letters


class Unreachable(Exception):
    """The server could not be reached at all."""


def _wcswidth() -> Optional[Callable[[str], int]]:
    """wcwidth's measure, which knows emoji sequences; it comes with Rasa (prompt-toolkit)."""
    try:
        from wcwidth import wcswidth
    except ImportError:
        return None
    return wcswidth


wcswidth = _wcswidth()


def text_width(text: str) -> int:
    """Columns `text` takes on a terminal: joining marks take none, wide characters two."""
    if wcswidth is not None:
        columns = wcswidth(text)
        if columns >= 0:  # -1: a control character it will not measure
            return int(columns)
    return sum(_char_width(c) for c in text)


def _char_width(c: str) -> int:
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf", "Cc"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def terminal_width() -> int:
    """The width rows are wrapped to, read again for every reply (the window may be resized)."""
    columns = shutil.get_terminal_size((80, 24)).columns
    return max(columns - MARGIN, MIN_WIDTH)


def has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(c) in RTL for c in text)


def direction(line: str, default: str = "L") -> str:
    """The line's direction, "R" or "L": the way most of its letters run.

    Not only the first letter, as the bidi algorithm's own rule would have it:
    the bot's Arabic lines often begin with a tracking number or a service's
    English code ("• MSD-25054664 — الإبلاغ عن فقدان الهوية"). A tie goes to
    the first letter; a line without letters (a bare number) gets `default`.
    """
    kinds = [unicodedata.bidirectional(c) for c in line]
    rtl = sum(k in RTL for k in kinds)
    ltr = kinds.count("L")
    if rtl != ltr:
        return "R" if rtl > ltr else "L"
    first = next((k for k in kinds if k == "L" or k in RTL), None)
    if first is None:
        return default
    return "L" if first == "L" else "R"


def _cut(word: str, width: int) -> Tuple[str, str]:
    """The longest head of `word` that fits `width` columns (at least one character), and the rest."""
    used = 0
    for i, c in enumerate(word):
        w = text_width(c)
        if w and i and used + w > width:
            return word[:i], word[i:]
        used += w
    return word, ""


def wrap(line: str, width: int) -> List[str]:
    """One logical line as rows of at most `width` columns, broken between words.

    A word wider than a row is the only thing ever cut. Runs of spaces become
    one; the line's indentation is kept on every row.  (textwrap measures with
    len(), which counts joining marks as columns and emoji as one.)
    """
    line = line.expandtabs(4)
    indent = line[: len(line) - len(line.lstrip(" "))]
    if text_width(indent) > width // 2:
        indent = ""
    words = line.split()
    if not words:
        return [""]  # a blank line stays: it separates paragraphs
    rows: List[str] = []
    row = ""
    for word in words:
        if row and text_width(f"{row} {word}") <= width:
            row = f"{row} {word}"
            continue
        if row:
            rows.append(row)
        row = indent + word
        while text_width(row) > width:  # longer than a whole row: cut it
            head, rest = _cut(word, width - text_width(indent))
            rows.append(indent + head)
            word = rest
            row = indent + rest
    rows.append(row)
    return rows


class Layout:
    """Turns the bot's text into the rows to print.

    With shaping on, a line is reshaped before it is wrapped (joined letters
    and lam-alef ligatures change its width), and each row is reordered on its
    own with the line's direction, so the first words of a right-to-left line
    are on its first row, at the right edge.
    """

    def __init__(self, shape: bool, width: Callable[[], int] = terminal_width) -> None:
        self.shape = shape
        self.width = width

    def line(self, line: str, width: int, default: str = "L") -> Tuple[List[str], str]:
        """The rows of one logical line, not yet aligned, and its direction."""
        base = direction(line, default)
        if not self.shape:
            return wrap(line, width), base
        rows = wrap(reshape(line), width)
        return [get_display(row, base_dir=base) for row in rows], base

    def rows(self, text: str) -> List[str]:
        """Every line of `text`, wrapped; right-to-left rows padded to end at the right edge."""
        width = self.width()
        default = direction(text)
        out: List[str] = []
        for logical in text.split("\n"):
            rows, base = self.line(logical, width, default)
            if self.shape and base == "R":
                rows = [" " * (width - text_width(row)) + row if row else row for row in rows]
            out.extend(rows)
        return out

    def button(self, number: int, title: str) -> List[str]:
        """`  [n] title`; a title that needs several rows keeps to its column."""
        prefix = f"  [{number}] "
        room = max(self.width() - text_width(prefix), MIN_WIDTH)
        rows, base = self.line(title, room)
        if self.shape and base == "R" and len(rows) > 1:
            block = max(text_width(row) for row in rows)
            rows = [" " * (block - text_width(row)) + row for row in rows]
        return [prefix + rows[0]] + [" " * len(prefix) + row for row in rows[1:]]

    def text(self, line: str) -> str:
        """A short line as it is drawn, neither wrapped nor aligned (the prompt)."""
        return get_display(reshape(line)) if self.shape else line

    def show(self, text: str, file: Optional[TextIO] = None) -> None:
        print("\n".join(self.rows(text)), file=file or sys.stdout, flush=True)


def render(replies: List[dict], layout: Layout) -> Tuple[List[str], List[str]]:
    """The rows to print for one turn of the bot, and the payloads its buttons send."""
    rows: List[str] = []
    payloads: List[str] = []
    for reply in replies:
        if reply.get("text"):
            rows.extend(layout.rows(reply["text"]))
        if reply.get("image"):
            rows.append(str(reply["image"]))
        for key in ("attachment", "custom"):
            if reply.get(key):
                rows.append(json.dumps(reply[key], ensure_ascii=False))
        for button in reply.get("buttons") or []:
            payloads.append(button.get("payload") or button.get("title") or "")
            title = button.get("title") or button.get("payload") or ""
            rows.extend(layout.button(len(payloads), title))
    return rows, payloads


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


def echo_rows(shown: str, columns: int) -> int:
    """How many terminal rows the prompt and the typed line `shown` took.

    A line that just fills its last row takes no more: readline (seen with 8.x
    on an xterm) then steps back up before the Enter's newline, and the
    terminal's own echo leaves the cursor waiting at the edge.
    """
    return max(1, -(-text_width(shown) // columns))


def echo(layout: Layout, prompt: str, line: str, interactive: bool) -> None:
    """Show the line the person sent as "أنت: …", in reading order.

    In a terminal, typed Arabic was echoed letter by letter in logical order,
    which reads backwards there: those rows are cleared and the line is drawn
    again, shaped and reordered.  When input comes from a pipe or output goes
    to a file there is no echo to replace: the line is printed, with no escape
    codes, as a record of the conversation.
    """
    if interactive:
        if not (layout.shape and has_rtl(line)):
            return  # the echo reads right as it is
        up = echo_rows(prompt + line, shutil.get_terminal_size((80, 24)).columns)
        sys.stdout.write(f"\x1b[{up}F\x1b[J")  # to the start of the prompt's row; clear from there down
    layout.show(f"{PROMPT}: {line.strip()}")


def converse(client: Client, layout: Layout) -> int:
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    # No prompt for piped input: nobody is there to read it before the reply.
    prompt = layout.text(PROMPT) + "> " if interactive else ""
    payloads: List[str] = []
    layout.show(WELCOME.format(url=client.url, quit=QUIT))
    while True:
        try:
            line = input(prompt)
        except EOFError:  # Ctrl-D
            print(flush=True)
            return 0
        typed = line.strip()
        if not typed:
            continue
        if typed == QUIT:
            return 0
        echo(layout, prompt, line, interactive)
        try:
            replies = client.say(choose(typed, payloads))
        except requests.Timeout:
            layout.show(TIMEOUT.format(seconds=REPLY_TIMEOUT), file=sys.stderr)
            continue
        except requests.HTTPError as e:
            layout.show(HTTP_ERROR.format(status=e.response.status_code), file=sys.stderr)
            continue
        except (ValueError, requests.RequestException):
            layout.show(BAD_REPLY, file=sys.stderr)
            continue
        rows, payloads = render(replies, layout)
        print("\n".join(rows + [""]), flush=True)


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
    layout = Layout(shape=not args.no_shape)
    client = Client(args.url, args.sender)
    try:
        client.check()
        try:
            import readline  # noqa: F401  line editing and history for input()
        except ImportError:
            pass
        return converse(client, layout)
    except Unreachable:
        layout.show(UNREACHABLE.format(url=client.url), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: leave quietly
        print(flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
