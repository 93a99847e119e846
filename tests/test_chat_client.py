"""scripts/chat.py, the terminal client, run in a real pseudo-terminal against the real servers."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path
from typing import List, Optional

import pytest
from arabic_reshaper import reshape
from bidi.algorithm import get_display

from musaed import catalogue
from scripts import chat as chat_client
from scripts.servers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CAT = catalogue.load()
REPLY_TIMEOUT = 90  # seconds: the bot answers in one or two on an idle machine
START_TIMEOUT = 30


def shaped(line: str) -> str:
    return get_display(reshape(line))


class Terminal:
    """scripts/chat.py on the slave side of a pty; we type and read on the master side."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "TERM": "xterm", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-m", "scripts.chat", *args]
        # pty.fork makes the pty the child's controlling terminal, so Ctrl-C
        # and Ctrl-D typed here reach it as they would from a keyboard.
        pid, fd = pty.fork()
        if pid == 0:  # the child
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.returncode: Optional[int] = None

    def text(self, since: int = 0) -> str:
        return self.output[since:].decode("utf-8", errors="replace")

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

    def expect(self, wanted: str, since: int = 0, timeout: float = REPLY_TIMEOUT) -> None:
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

    def wait(self, timeout: float = START_TIMEOUT) -> int:
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

    def start(*args: str) -> Terminal:
        t = Terminal(*args)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


PROMPT = shaped("أنت") + "> "


def test_steps_are_shaped_line_by_line(servers, terminal):
    steps = CAT.services["report_lost_id"].steps
    t = terminal("--url", servers.url)
    t.expect(PROMPT, timeout=START_TIMEOUT)
    mark = t.type("ضاعت هويتي\r")
    # Each step line is shaped and reordered on its own and stays on its own line.
    t.expect(shaped(f"1. {steps[0]}") + "\r\n" + shaped(f"2. {steps[1]}"), since=mark)
    t.expect(PROMPT, since=mark)
    reply = t.text(mark)
    assert f"1. {steps[0]}" not in reply, "the logical-order string must not be printed"
    assert steps[0] not in reply
    t.type("/quit\r")
    assert t.wait() == 0
    assert "Traceback" not in t.text()


def test_no_shape_prints_the_text_as_is(servers, terminal):
    steps = CAT.services["report_lost_id"].steps
    t = terminal("--url", servers.url, "--no-shape")
    t.expect("أنت> ", timeout=START_TIMEOUT)
    mark = t.type("ضاعت هويتي\r")
    t.expect(f"1. {steps[0]}\r\n2. {steps[1]}", since=mark)
    t.expect("أنت> ", since=mark)
    assert shaped(f"1. {steps[0]}") not in t.text(mark)
    t.type("\x04")  # Ctrl-D
    assert t.wait() == 0
    assert "Traceback" not in t.text()


def test_typing_a_button_number_sends_its_payload(servers, terminal):
    menu = CAT.menu()
    first = CAT.services[menu[0][0]]
    t = terminal("--url", servers.url)
    t.expect(PROMPT, timeout=START_TIMEOUT)
    mark = t.type("وش تقدر تسوي\r")
    for number, (_, name) in enumerate(menu, start=1):
        t.expect(f"[{number}] {shaped(name)}", since=mark)
    t.expect(PROMPT, since=mark)
    mark = t.type("1\r")
    # "1" as text would get a fallback; the payload /<first service> gets its how-to.
    t.expect(shaped(f"1. {first.steps[0]}"), since=mark)
    t.expect(shaped(f"{first.name}: {first.summary}"), since=mark)
    t.type("/quit\r")
    assert t.wait() == 0


def test_ctrl_c_exits_without_a_traceback(servers, terminal):
    t = terminal("--url", servers.url)
    t.expect(PROMPT, timeout=START_TIMEOUT)
    # As a person would: a moment after the prompt. (Python's readline only
    # notices a SIGINT that arrives once it waits for a key, not one that
    # lands between printing the prompt and starting to wait.)
    time.sleep(0.5)
    t.type("\x03")  # Ctrl-C
    assert t.wait() == 0
    assert "Traceback" not in t.text()
    assert "KeyboardInterrupt" not in t.text()


@pytest.mark.parametrize("no_shape", [False, True], ids=["shaped", "no-shape"])
def test_unreachable_server_prints_one_arabic_line_and_exits_1(terminal, no_shape):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    t = terminal("--url", url, *(["--no-shape"] if no_shape else []))
    assert t.wait() == 1
    line = chat_client.UNREACHABLE.format(url=url)
    assert "تعذّر الوصول" in line and url in line
    out = t.text()
    assert out.strip() == (line if no_shape else shaped(line)), out
    assert "Traceback" not in out
