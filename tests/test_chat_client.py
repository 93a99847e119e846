"""scripts/chat.py, the terminal client, run in a real pseudo-terminal against the real servers.

The pseudo-terminal and the screen it shows come from test_chat_terminal.py,
which checks the layout against a fake REST channel.
"""

from __future__ import annotations

import time
from typing import List

import pytest
from arabic_reshaper import reshape
from bidi.algorithm import get_display
from test_chat_terminal import Terminal, rows_from, rtl_reading, start_of

from musaed import catalogue
from scripts import chat as chat_client
from scripts.servers import free_port

pytestmark = pytest.mark.e2e

CAT = catalogue.load()
REPLY_TIMEOUT = 90  # seconds: the bot answers in one or two on an idle machine
START_TIMEOUT = 30


def shaped(line: str) -> str:
    return get_display(reshape(line))


@pytest.fixture
def terminal():
    opened: List[Terminal] = []

    def start(*args: str, columns: int = 200) -> Terminal:
        t = Terminal(*args, columns=columns)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


PROMPT = shaped("أنت") + "> "


def test_steps_wrap_by_words_and_read_from_the_top_right(servers, terminal):
    steps = CAT.services["report_lost_id"].steps
    t = terminal("--url", servers.url, columns=40)
    t.expect(PROMPT, timeout=START_TIMEOUT)
    mark = t.type("ضاعت هويتي\r")
    t.expect(PROMPT, since=mark, timeout=REPLY_TIMEOUT)
    assert f"1. {steps[0]}" not in t.text(mark), "the logical-order string must not be printed"
    # Each step starts a row of its own; the longer ones go on to the next rows,
    # broken between words; each row reads from its right edge.
    words = [word for number, step in enumerate(steps, start=1) for word in reshape(f"{number}. {step}").split()]
    lines = t.screen().lines()
    rows = rows_from(lines, words, start_of(lines, words, rtl_reading), rtl_reading)
    assert len(rows) > len(steps)
    assert all(len(row) == 40 - chat_client.MARGIN for row in rows), rows
    t.type("/quit\r")
    assert t.wait() == 0
    assert "Traceback" not in t.text()


def test_no_shape_prints_the_text_as_is(servers, terminal):
    steps = CAT.services["report_lost_id"].steps
    t = terminal("--url", servers.url, "--no-shape")
    t.expect("أنت> ", timeout=START_TIMEOUT)
    mark = t.type("ضاعت هويتي\r")
    t.expect(f"1. {steps[0]}\r\n2. {steps[1]}", since=mark, timeout=REPLY_TIMEOUT)
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
        t.expect(f"[{number}] {shaped(name)}", since=mark, timeout=REPLY_TIMEOUT)
    t.expect(PROMPT, since=mark)
    mark = t.type("1\r")
    # "1" as text would get a fallback; the payload /<first service> gets its how-to.
    t.expect(shaped(f"1. {first.steps[0]}"), since=mark, timeout=REPLY_TIMEOUT)
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
    assert out.strip() == (line if no_shape else shaped(line)), out  # one row: the terminal is wide
    assert "Traceback" not in out
