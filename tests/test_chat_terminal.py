"""scripts/chat.py's screen, in a real pseudo-terminal of a set width, against a fake REST channel.

The client's output is played through a small terminal emulator (`Screen`,
xterm's rules for wrapping and the few escape codes readline and the client
send), so the tests look at what a person would see: which words are on which
row, and where.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, Optional

import pytest
from arabic_reshaper import reshape
from bidi.algorithm import get_display

from scripts import chat as chat_client

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30  # seconds; the fake server answers at once

PARAGRAPH = (
    "يمكنك تقديم طلب بدل فاقد للهوية الوطنية بعد الإبلاغ عن فقدانها، "
    "ويصلك رقم الطلب برسالة نصية خلال يومي عمل، ثم تستلم الهوية الجديدة من أقرب مكتب."
)
MIXED = "• MSD-25054664 — الإبلاغ عن فقدان الهوية"
ENGLISH = (
    "To replace a lost national identity card, report the loss first; "
    "the replacement is printed within three working days."
)
BUTTONS = [
    {"title": "الإبلاغ عن فقدان الهوية", "payload": "/report_lost_id"},
    {"title": "English", "payload": "/english"},
]
PICKED = "اخترت الإبلاغ عن فقدان الهوية."
RECEIVED = "وصلت رسالتك."


def shaped(line: str, base: Optional[str] = None) -> str:
    return get_display(reshape(line), base_dir=base)


PROMPT = shaped("أنت") + "> "
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[@-~]")


# --- a fake Rasa REST channel -------------------------------------------------


class FakeRasa:
    """Answers GET / and POST /webhooks/rest/webhook with canned replies; keeps what it was sent."""

    def __init__(self) -> None:
        self.received: List[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def answer(self, status: int, body: object) -> None:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.answer(200, "Hello from Rasa: 3.6.21")

            def do_POST(self) -> None:
                if self.path != "/webhooks/rest/webhook":
                    return self.answer(404, {})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                message = body["message"]
                fake.received.append(message)
                if message == "/500":
                    return self.answer(500, {"error": "boom"})
                if message == "/bad":
                    return self.answer(200, {"not": "a list"})
                if message == "ضاعت هويتي":
                    return self.answer(
                        200,
                        [
                            {"recipient_id": "t", "text": PARAGRAPH},
                            {"recipient_id": "t", "text": f"{MIXED}\n{ENGLISH}"},
                            {"recipient_id": "t", "text": "اختر:", "buttons": BUTTONS},
                        ],
                    )
                if message == "/report_lost_id":
                    return self.answer(200, [{"recipient_id": "t", "text": PICKED}])
                return self.answer(200, [{"recipient_id": "t", "text": RECEIVED}])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rasa():
    fake = FakeRasa()
    yield fake
    fake.stop()


# --- the client in a pseudo-terminal -----------------------------------------


class Terminal:
    """scripts/chat.py on the slave side of a pty `columns` wide; we type and read on the master side."""

    def __init__(self, *args: str, columns: int = 80, rows: int = 50) -> None:
        self.columns, self.rows = columns, rows
        env = {**os.environ, "TERM": "xterm", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        for name in ("COLUMNS", "LINES"):  # they would win over the pty's size
            env.pop(name, None)
        argv = [sys.executable, "-m", "scripts.chat", *args]
        # pty.fork makes the pty the child's controlling terminal, so Ctrl-C
        # and Ctrl-D typed here reach it as they would from a keyboard.
        pid, fd = pty.fork()
        if pid == 0:  # the child
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.returncode: Optional[int] = None

    def text(self, since: int = 0) -> str:
        return self.output[since:].decode("utf-8", errors="replace")

    def screen(self) -> "Screen":
        """What the terminal shows now, with the rows scrolled off the top."""
        screen = Screen(self.columns, self.rows)
        screen.feed(self.text())
        return screen

    def _read(self, timeout: float) -> bool:
        """Read what is available within `timeout`; False once the child closed the pty."""
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: every slave fd is closed, the child has gone
            return False
        self.output += data
        return bool(data)

    def expect(self, wanted: str, since: int = 0, timeout: float = TIMEOUT) -> None:
        """Read until `wanted` appears in the output after byte `since`."""
        needle = wanted.encode("utf-8")
        deadline = time.monotonic() + timeout
        while needle not in self.output[since:]:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 1.0)):
                if needle in self.output[since:]:
                    return
                pytest.fail(f"{wanted!r} did not appear within {timeout} s; output:\n{self.text(since)}")

    def type(self, text: str) -> int:
        """Type `text` (add "\\r" to press Enter); return the output offset before it."""
        mark = len(self.output)
        os.write(self.fd, text.encode("utf-8"))
        return mark

    def send(self, text: str) -> int:
        """Type a line, press Enter, and read until the next prompt; return the offset before it."""
        mark = self.type(text + "\r")
        self.expect(PROMPT, since=mark)
        return mark

    def wait(self, timeout: float = TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the client did not exit within {timeout} s; output:\n{self.text()}")
            self._read(0.2)
        while self._read(0.1):  # whatever is left in the pty
            pass
        return self.returncode

    def close(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


@pytest.fixture
def terminal():
    opened: List[Terminal] = []

    def start(*args: str, columns: int = 80, rows: int = 50) -> Terminal:
        t = Terminal(*args, columns=columns, rows=rows)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


# --- a terminal emulator, enough for these tests ------------------------------


class Screen:
    """A terminal without bidi, as xterm draws: one cell per letter, joining marks on the
    letter before, the wrap deferred until a letter follows one in the last column.

    It knows the control characters and CSI codes readline and the client send
    and fails on any other, rather than guess.
    """

    def __init__(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        self.cells = [[" "] * columns for _ in range(rows)]
        self.scrolled: List[str] = []
        self.y = self.x = 0
        self.pending_wrap = False

    def lines(self) -> List[str]:
        """Every row, from the first one scrolled off to the last on screen, without trailing blanks."""
        rows = self.scrolled + ["".join(row) for row in self.cells]
        while rows and not rows[-1].strip():
            rows.pop()
        return [row.rstrip() for row in rows]

    def _line_feed(self) -> None:
        if self.y == self.rows - 1:
            self.scrolled.append("".join(self.cells.pop(0)))
            self.cells.append([" "] * self.columns)
        else:
            self.y += 1

    def _put(self, c: str) -> None:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            x = self.x if self.pending_wrap else max(self.x - 1, 0)
            self.cells[self.y][x] += c
            return
        if unicodedata.east_asian_width(c) in ("W", "F"):
            raise AssertionError(f"no wide characters in these tests: {c!r}")
        if self.pending_wrap:
            self.x = 0
            self._line_feed()
            self.pending_wrap = False
        self.cells[self.y][self.x] = c
        if self.x == self.columns - 1:
            self.pending_wrap = True
        else:
            self.x += 1

    def _erase(self, y: int, start: int, end: int) -> None:
        for x in range(start, end):
            self.cells[y][x] = " "

    def _csi(self, private: str, params: str, final: str) -> None:
        numbers = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = max(numbers[0], 1) if numbers else 1
        first = numbers[0] if numbers else 0
        if private == "?" and final in "hl":  # modes: bracketed paste, meta key
            return
        if private:
            raise AssertionError(f"unknown CSI {private}{params}{final}")
        if final not in "m":
            self.pending_wrap = False
        if final == "m":
            return
        elif final == "A":
            self.y = max(self.y - n, 0)
        elif final == "B":
            self.y = min(self.y + n, self.rows - 1)
        elif final == "C":
            self.x = min(self.x + n, self.columns - 1)
        elif final == "D":
            self.x = max(self.x - n, 0)
        elif final == "E":
            self.x, self.y = 0, min(self.y + n, self.rows - 1)
        elif final == "F":
            self.x, self.y = 0, max(self.y - n, 0)
        elif final == "G":
            self.x = min(n, self.columns) - 1
        elif final in "Hf":
            row = numbers[0] if numbers else 1
            col = numbers[1] if len(numbers) > 1 else 1
            self.y, self.x = min(max(row, 1), self.rows) - 1, min(max(col, 1), self.columns) - 1
        elif final == "J":
            if first == 0:
                self._erase(self.y, self.x, self.columns)
                for y in range(self.y + 1, self.rows):
                    self._erase(y, 0, self.columns)
            elif first == 1:
                for y in range(self.y):
                    self._erase(y, 0, self.columns)
                self._erase(self.y, 0, self.x + 1)
            else:
                for y in range(self.rows):
                    self._erase(y, 0, self.columns)
        elif final == "K":
            if first == 0:
                self._erase(self.y, self.x, self.columns)
            elif first == 1:
                self._erase(self.y, 0, self.x + 1)
            else:
                self._erase(self.y, 0, self.columns)
        elif final == "P":
            row = self.cells[self.y]
            del row[self.x : self.x + n]
            row.extend([" "] * (self.columns - len(row)))
        elif final == "@":
            row = self.cells[self.y]
            row[self.x : self.x] = [" "] * n
            del row[self.columns :]
        elif final == "X":
            self._erase(self.y, self.x, min(self.x + n, self.columns))
        else:
            raise AssertionError(f"unknown CSI {params}{final}")

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            c = text[i]
            i += 1
            if c == "\x1b":
                kind = text[i]
                i += 1
                if kind == "[":
                    start = i
                    while not ("\x40" <= text[i] <= "\x7e"):
                        i += 1
                    body, final = text[start:i], text[i]
                    i += 1
                    private = body[0] if body and body[0] in "?<=>" else ""
                    self._csi(private, body[len(private) :], final)
                elif kind == "]":  # an OSC (window title): up to BEL or ST
                    while text[i] != "\x07" and text[i : i + 2] != "\x1b\\":
                        i += 1
                    i += 1 if text[i] == "\x07" else 2
                elif kind in "=>":  # keypad modes
                    pass
                else:
                    raise AssertionError(f"unknown escape ESC {kind!r}")
            elif c == "\r":
                self.x, self.pending_wrap = 0, False
            elif c == "\n":
                self._line_feed()
                self.pending_wrap = False
            elif c == "\b":
                self.x, self.pending_wrap = max(self.x - 1, 0), False
            elif c == "\t":
                self.x = min((self.x // 8 + 1) * 8, self.columns - 1)
            elif c == "\x07":
                pass
            elif ord(c) < 0x20:
                raise AssertionError(f"unknown control character {c!r}")
            else:
                self._put(c)


def test_the_screen_wraps_like_xterm():
    s = Screen(5, 3)
    s.feed("abcde")
    assert (s.y, s.x, s.pending_wrap) == (0, 4, True)
    s.feed("f\r\nxy\x1b[2Dz\x1b[F\x1b[J")
    assert s.lines() == ["abcde"]
    s.feed("1\r\n2\r\n3\r\n4")  # from the start of the cleared row; the screen scrolls
    assert s.lines() == ["abcde", "1", "2", "3", "4"]


# --- what the person sees -----------------------------------------------------


def right(row: str, columns: int) -> str:
    """`row` right-aligned in a terminal `columns` wide, as the client aligns right-to-left rows."""
    return " " * (columns - chat_client.MARGIN - len(row)) + row


MIRRORED = str.maketrans("«»()[]", "»«)(][")


def rtl_reading(row: str) -> List[str]:
    """The reshaped words of a right-to-left row of Arabic words (and numbers before a full stop),
    in reading order: the bidi algorithm reversed the row and mirrored its brackets."""
    return [word[::-1].translate(MIRRORED) for word in reversed(row.split())]


def rows_from(lines: List[str], words: List[str], first_row: int, read) -> List[str]:
    """The rows from `first_row` on that hold `words`, in order, as `read` reads each row."""
    taken: List[str] = []
    got: List[str] = []
    for line in lines[first_row:]:
        if len(got) >= len(words):
            break
        taken.append(line)
        got.extend(read(line))
    assert got == words, "the rows read:\n" + "\n".join(taken)
    return taken


def start_of(lines: List[str], words: List[str], read) -> int:
    """The row whose first words, read as `read` reads, are `words`' first three."""
    for i, line in enumerate(lines):
        if read(line)[:3] == words[:3]:
            return i
    raise AssertionError("no row starts with " + " ".join(words[:3]) + "; the screen:\n" + "\n".join(lines))


def test_an_arabic_paragraph_wraps_by_words_and_reads_top_down_from_the_right(rasa, terminal):
    t = terminal("--url", rasa.url, columns=40)
    t.expect(PROMPT)
    t.send("ضاعت هويتي")
    lines = t.screen().lines()
    words = reshape(PARAGRAPH).split()
    first = start_of(lines, words, rtl_reading)  # the paragraph's first words are on its first row
    rows = rows_from(lines, words, first, rtl_reading)  # and every next row goes on, whole words only
    assert len(rows) >= 3, rows
    edge = 40 - chat_client.MARGIN
    for row in rows:
        assert len(row) == edge, f"not right-aligned to column {edge}: {row!r}"  # lines() strips the right
        assert row.lstrip() == row.strip()


def test_english_is_wrapped_by_words_and_left_aligned(rasa, terminal):
    t = terminal("--url", rasa.url, columns=40)
    t.expect(PROMPT)
    t.send("ضاعت هويتي")
    lines = t.screen().lines()
    words = ENGLISH.split()
    rows = rows_from(lines, words, start_of(lines, words, str.split), str.split)
    assert len(rows) >= 3, rows
    for row in rows:
        assert row == row.strip() and len(row) <= 40 - chat_client.MARGIN, row


def test_a_mixed_line_keeps_its_tracking_number_whole_and_reads_from_the_right(rasa, terminal):
    t = terminal("--url", rasa.url, columns=30)
    t.expect(PROMPT)
    t.send("ضاعت هويتي")
    lines = t.screen().lines()
    [first] = [i for i, line in enumerate(lines) if "MSD-25054664" in line.split()]
    # Mostly Arabic, so right to left: the bullet that begins it at the right edge.
    assert lines[first].endswith("•") and len(lines[first]) == 30 - chat_client.MARGIN, lines[first]
    assert rtl_reading(lines[first])[-2:] == reshape("الإبلاغ عن").split()
    assert rtl_reading(lines[first + 1]) == reshape("فقدان الهوية").split()
    assert len(lines[first + 1]) == 30 - chat_client.MARGIN


def test_no_row_is_wider_than_the_terminal_and_buttons_are_numbered(rasa, terminal):
    t = terminal("--url", rasa.url, columns=30)
    t.expect(PROMPT)
    t.send("ضاعت هويتي")
    # Every row the client writes ends before the edge: the terminal never has to wrap one.
    written = ESCAPES.sub("", t.text()).replace("\r", "").split("\n")
    assert all(len(row) <= 30 - chat_client.MARGIN for row in written), "\n".join(written)
    lines = t.screen().lines()
    assert "  [1] " + shaped(BUTTONS[0]["title"]) in lines
    assert "  [2] English" in lines


def test_typing_a_button_number_sends_its_payload(rasa, terminal):
    t = terminal("--url", rasa.url, columns=40)
    t.expect(PROMPT)
    t.send("ضاعت هويتي")
    t.send("1")
    assert rasa.received == ["ضاعت هويتي", "/report_lost_id"]
    lines = t.screen().lines()
    assert lines[-3:] == [right(shaped(PICKED), 40), "", PROMPT.rstrip()]
    assert lines[-4] == PROMPT + "1", "a typed number is left as it was echoed"
    t.type("/quit\r")
    assert t.wait() == 0


def typed_line(length: int) -> str:
    """Arabic words, `length` letters and spaces long."""
    text = ("سلام عليكم ورحمة الله " * 20)[:length]
    return text[:-1] + "ه" if text.endswith(" ") else text


@pytest.mark.parametrize(
    "length",
    [10, 40 - len(PROMPT), 40 - len(PROMPT) + 1, 100],
    ids=["short", "fills-the-row", "one-past-the-row", "three-rows"],
)
def test_typed_arabic_is_shown_again_in_reading_order(rasa, terminal, length):
    typed = typed_line(length)
    t = terminal("--url", rasa.url, columns=40)
    t.expect(PROMPT)
    before = t.screen().lines()
    t.send(typed)
    lines = t.screen().lines()
    # The welcome stays; the echo in typing order (which reads backwards here)
    # is replaced, row for row, by "أنت: …" in reading order, right-aligned.
    assert lines[: len(before) - 1] == before[:-1]
    assert not any(typed[:8] in line for line in lines), "the echo in typing order is still on the screen"
    echo = lines[len(before) - 1 : -3]  # then the reply, a blank row and the next prompt
    assert lines[-3:] == [right(shaped(RECEIVED), 40), "", PROMPT.rstrip()]
    assert [word for row in echo for word in rtl_reading(row)] == reshape(f"أنت: {typed}").split()
    assert all(len(row) == 40 - chat_client.MARGIN for row in echo), echo
    assert rasa.received == [typed]


def test_piped_input_gets_a_plain_record_of_each_line(rasa):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "40"}
    done = subprocess.run(
        [sys.executable, "-m", "scripts.chat", "--url", rasa.url],
        input="ضاعت هويتي\n1\n/quit\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert PROMPT not in done.stdout  # no one is there to read a prompt
    lines = [line.strip() for line in done.stdout.splitlines()]
    # Each line sent, in reading order, before the reply to it.
    assert lines.index(shaped("أنت: ضاعت هويتي")) < lines.index(shaped("اختر:"))
    assert lines.index(shaped("اختر:")) < lines.index(shaped("أنت: 1")) < lines.index(shaped(PICKED))
    assert all(len(line) <= 40 - chat_client.MARGIN for line in done.stdout.splitlines())
    assert rasa.received == ["ضاعت هويتي", "/report_lost_id"]


def test_no_shape_keeps_the_logical_text_but_still_wraps_by_words(rasa, terminal):
    t = terminal("--url", rasa.url, "--no-shape", columns=40)
    t.expect("أنت> ")
    mark = t.type("ضاعت هويتي\r")
    t.expect("أنت> ", since=mark)
    lines = t.screen().lines()
    assert "أنت> ضاعت هويتي" in lines  # a terminal with bidi lays the echo out itself
    words = PARAGRAPH.split()
    rows = rows_from(lines, words, start_of(lines, words, str.split), str.split)
    assert len(rows) >= 3
    assert all(row == row.strip() and len(row) <= 40 - chat_client.MARGIN for row in rows), rows
    assert reshape(PARAGRAPH.split()[0]) not in t.text()


def test_server_errors_are_one_arabic_line_and_ctrl_d_ends(rasa, terminal):
    t = terminal("--url", rasa.url, columns=80)
    t.expect(PROMPT)
    t.send("/500")
    t.send("/bad")
    lines = [line.strip() for line in t.screen().lines()]
    assert shaped(chat_client.HTTP_ERROR.format(status=500)) in lines
    assert shaped(chat_client.BAD_REPLY) in lines
    t.type("\x04")  # Ctrl-D
    assert t.wait() == 0
    assert "Traceback" not in t.text()


def test_ctrl_c_exits_quietly(rasa, terminal):
    t = terminal("--url", rasa.url)
    t.expect(PROMPT)
    time.sleep(0.5)  # readline notices a SIGINT only once it waits for a key
    t.type("\x03")
    assert t.wait() == 0
    assert "Traceback" not in t.text() and "KeyboardInterrupt" not in t.text()


# --- the layout on its own ----------------------------------------------------


def test_only_a_word_longer_than_a_row_is_cut():
    assert chat_client.wrap("a " + "x" * 25 + " bb", 10) == ["a", "x" * 10, "x" * 10, "x" * 5 + " bb"]
    assert chat_client.wrap("MSD-25054664 is here", 12) == ["MSD-25054664", "is here"]
    assert chat_client.wrap("  indented words go on", 10) == ["  indented", "  words go", "  on"]
    assert chat_client.wrap("", 10) == [""]


def test_rows_are_measured_after_shaping():
    # Lam-alef joins two letters into one glyph: "لا" takes one column once shaped.
    line = " ".join(["لا"] * 10)  # 29 letters and spaces, 19 columns shaped
    assert chat_client.Layout(True, lambda: 20).rows(line) == [" " + shaped(line, "R")]


def test_direction_goes_by_most_letters():
    assert chat_client.direction(MIXED) == "R"
    assert chat_client.direction("Call us about your هوية") == "L"
    assert chat_client.direction("1.", default="R") == "R"
    assert chat_client.direction("ab هو") == "L"  # a tie: the first letter's
