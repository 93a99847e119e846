"""The edges a browser meets (issue 25, item 6): CORS only for the configured web origins,
the security headers and no version banners on every page and API we serve, the widget
still working under its CSP and embedded in another site, and python-socketio past the
memory denial of service reachable from the widget (5.16.2).

Real servers throughout: the shared Rasa and action servers (`servers`, whose accepted
browser origins are the widget page's port and an embedding site's port), web/serve.py
in a subprocess, customer care's app on a loopback port, Debian's Chromium.
"""

import asyncio
import html
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import pytest
import requests
from packaging.version import Version
from test_web import ask_and_wait  # the same typing and waiting as the web tests

from musaed import catalogue, settings, web_security

ROOT = Path(__file__).resolve().parent.parent
CAT = catalogue.load()
FOREIGN = "http://evil.example"
TIMEOUT = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


# -- the setting -----------------------------------------------------------------------


def test_web_origins_default_to_the_local_page_and_refuse_a_wildcard():
    assert web_security.web_origins({}) == ["http://localhost:8000", "http://127.0.0.1:8000"]
    assert web_security.web_origins({"MUSAED_WEB_ORIGINS": " "}) == list(web_security.DEFAULT_WEB_ORIGINS)
    assert web_security.web_origins(
        {"MUSAED_WEB_ORIGINS": "https://absher.example.sa, https://www.example.sa/ http://10.0.0.5:8080"}
    ) == ["https://absher.example.sa", "https://www.example.sa", "http://10.0.0.5:8080"]
    for bad in ("*", "https://*.example.sa", "example.sa", "https://example.sa/chat", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            web_security.web_origins({"MUSAED_WEB_ORIGINS": bad})


def test_a_page_s_csp_allows_its_inline_code_only_by_hash():
    page = '<style>b{}</style><p style="color:red"></p><script>go()</script><script src="/x.js"></script>'
    csp = dict(d.split(" ", 1) for d in web_security.page_csp(page, connect=["'self'", "ws://h:1"]).split("; "))
    assert csp["script-src"] == "'self' 'sha256-" + _b64("go()") + "'"
    assert csp["style-src"] == f"'self' 'sha256-{_b64('b{}')}' 'unsafe-hashes' 'sha256-{_b64('color:red')}'"
    assert csp["connect-src"] == "'self' ws://h:1"
    assert csp["frame-ancestors"] == "'none'" and csp["default-src"] == "'none'"
    assert "unsafe-inline" not in web_security.page_csp(page) and "unsafe-eval" not in web_security.page_csp(page)


def _b64(text: str) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


# -- python-socketio ---------------------------------------------------------------------


def test_python_socketio_is_past_the_binary_attachment_denial_of_service():
    assert Version(version("python-socketio")) >= Version("5.16.2")


@pytest.mark.e2e
def test_a_binary_packet_before_connecting_is_not_kept_waiting_for_attachments(servers):
    """Before 5.16.2 a socket that had not joined the namespace could announce a binary
    event and the server kept everything it sent next as that event's attachments, in
    memory, without end (announce 9,999,999,999 and stream). Here the next message, a
    plain namespace connect, must be answered as one."""
    import websockets

    async def probe() -> str:
        url = servers.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(url) as ws:
            assert (await asyncio.wait_for(ws.recv(), TIMEOUT)).startswith("0{")  # engine.io open
            # A binary event announcing two attachments, and one of them: the server
            # that accepts the announcement waits for the second one.
            await ws.send('452-["user_uttered",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
            await ws.send(b"\x00" * 1024)
            await ws.send("40")  # socket.io connect to "/" (taken as the second attachment before 5.16.2)
            while True:
                message = await asyncio.wait_for(ws.recv(), 5)
                if isinstance(message, str) and message.startswith("40"):
                    return message

    assert asyncio.run(probe()).startswith('40{"sid":')


# -- CORS on the Rasa server -------------------------------------------------------------


@pytest.fixture(scope="module")
def page_origin(servers):
    return f"http://127.0.0.1:{servers.web_port}"


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/", "/webhooks/rest/", "/socket.io/?EIO=4&transport=polling"])
def test_cors_answers_only_the_configured_web_origins(servers, page_origin, path):
    foreign = requests.get(servers.url + path, headers={"Origin": FOREIGN}, timeout=TIMEOUT)
    assert "Access-Control-Allow-Origin" not in foreign.headers, foreign.headers
    ours = requests.get(servers.url + path, headers={"Origin": page_origin}, timeout=TIMEOUT)
    assert ours.status_code == 200, ours.text
    assert ours.headers["Access-Control-Allow-Origin"] == page_origin  # once, this origin only


@pytest.mark.e2e
def test_a_preflight_from_a_foreign_origin_is_not_allowed(servers, page_origin):
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    foreign = requests.options(
        servers.url + "/webhooks/rest/webhook", headers={"Origin": FOREIGN, **ask}, timeout=TIMEOUT
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers
    ours = requests.options(
        servers.url + "/webhooks/rest/webhook", headers={"Origin": page_origin, **ask}, timeout=TIMEOUT
    )
    assert ours.headers["Access-Control-Allow-Origin"] == page_origin


@pytest.mark.e2e
def test_a_socket_from_a_foreign_origin_is_refused(servers, page_origin):
    handshake = servers.url + "/socket.io/?EIO=4&transport=polling"
    refused = requests.get(handshake, headers={"Origin": FOREIGN}, timeout=TIMEOUT)
    assert refused.status_code == 400 and '"sid"' not in refused.text
    accepted = requests.get(handshake, headers={"Origin": page_origin}, timeout=TIMEOUT)
    assert accepted.status_code == 200 and '"sid"' in accepted.text


# -- headers -------------------------------------------------------------------------------


def assert_guarded(response, what: str) -> None:
    h = response.headers
    assert h.get("X-Frame-Options") == "DENY", what
    assert h.get("X-Content-Type-Options") == "nosniff", what
    assert h.get("Referrer-Policy") == "no-referrer", what
    assert "frame-ancestors 'none'" in h.get("Content-Security-Policy", ""), what
    # No framework, language or version named.
    server = h.get("Server", "")
    assert not re.search(r"\d|python|aiohttp|sanic|rasa|websockets", server, re.I), (what, server)


@pytest.fixture(scope="module")
def web_url(servers):
    """web/serve.py on the widget page's port (a browser origin the Rasa server accepts)."""
    port = servers.web_port
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.serve", "--port", str(port), "--rasa-url", servers.url],
        cwd=ROOT,
        env={**os.environ, "MUSAED_DB": str(servers.db_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.e2e
def test_every_response_of_the_web_front_has_the_headers(web_url, servers, monkeypatch):
    from musaed import receipt, seed, store

    monkeypatch.setenv("MUSAED_DB", str(servers.db_file))
    khalid = seed.ids()["khalid"]
    request, _ = store.create_request(
        store.open_db(), service_id="report_lost_id", applicant_id=khalid, beneficiary_id=khalid, conversation_id="t"
    )
    paths = {
        "page": "/",
        "widget": "/widget.js",
        "widget style": "/widget.css",
        "page style": "/page.css",
        "socket.io client": "/vendor/socket.io.min.js",
        "receipt": receipt.receipt_path(request["tracking_number"]),
        "unsigned receipt": f"/receipts/{request['tracking_number']}.png",
        "not found": "/nothing-here",
    }
    for what, path in paths.items():
        assert_guarded(requests.get(web_url + path, timeout=TIMEOUT), what)
    receipt_response = requests.get(web_url + paths["receipt"], timeout=TIMEOUT)
    assert receipt_response.status_code == 200 and receipt_response.headers["Cache-Control"] == "no-store"
    js = requests.get(web_url + "/widget.js", timeout=TIMEOUT)
    assert js.headers["Content-Type"].startswith("application/javascript")  # nosniff needs the right type


@pytest.mark.e2e
def test_the_page_s_csp_has_no_inline_code_and_talks_only_to_the_rasa_server(web_url, servers):
    page = requests.get(web_url + "/", timeout=TIMEOUT)
    csp = dict(d.split(" ", 1) for d in page.headers["Content-Security-Policy"].split("; "))
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in page.headers["Content-Security-Policy"]
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    rasa = servers.url
    # and the receipts' address (MUSAED_PUBLIC_URL): the widget fetches a receipt to share it as a file.
    receipts = web_security.origin_of(settings.PUBLIC_URL.get())
    assert csp["connect-src"].split() == ["'self'", rasa, rasa.replace("http://", "ws://"), receipts]
    assert csp["default-src"] == "'none'" and csp["form-action"] == "'none'"
    # Nothing inline in the page itself for the CSP to refuse.
    assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", page.text)


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/", "/webhooks/rest/", "/socket.io/?EIO=4&transport=polling", "/no-such-route"])
def test_the_rasa_server_has_the_headers_and_says_no_version(servers, path):
    response = requests.get(servers.url + path, timeout=TIMEOUT)
    assert_guarded(response, path)
    assert not re.search(r"\d+\.\d+\.\d+", response.text), response.text[:200]  # "Hello from Rasa: 3.6.21"


# -- customer care -----------------------------------------------------------------------


@pytest.fixture
def care_url(tmp_path, tracker_db):
    """Customer care's app (no model: lookups that need one answer 503) on a loopback port."""
    from aiohttp import web

    from care import server

    app = server.make_app(None, tracker_db, {"huda": "huda-token-0123456789"}, db_path=tmp_path / "musaed.db")
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    port = free_port()
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_customer_care_s_page_and_api_have_the_headers(care_url):
    page = requests.get(care_url + "/care/", timeout=TIMEOUT)
    assert_guarded(page, "care page")
    csp = page.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/]+={0,2}'", csp)
    auth = {"Authorization": "Bearer huda-token-0123456789"}
    for what, response in {
        "refused": requests.get(care_url + "/care/statuses", timeout=TIMEOUT),
        "answered": requests.get(care_url + "/care/statuses", headers=auth, timeout=TIMEOUT),
        "redirect": requests.get(care_url + "/care", allow_redirects=False, timeout=TIMEOUT),
        "not found": requests.get(care_url + "/elsewhere", timeout=TIMEOUT),
    }.items():
        assert_guarded(response, what)


# -- in the browser (last: Playwright's sync API holds an event loop while it runs) -----


CSP_WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.mark.e2e
def test_the_widget_works_under_its_csp_and_the_csp_refuses_injected_script(browser, web_url):
    page = browser.new_page()
    page.add_init_script(CSP_WATCH)
    page.goto(web_url)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=TIMEOUT * 1000)
    ask_and_wait(page, "ضاعت هويتي", f"1. {CAT.services['report_lost_id'].steps[0]}")
    page.get_by_role("button", name=CAT.labels["button_fees"]).last.click()
    ask_and_wait(page, "شكرا", "العفو")
    page.reload()  # the conversation comes back from the server, still under the CSP
    page.wait_for_selector(".musaed-bot:not(.musaed-greeting) > p", timeout=TIMEOUT * 1000)
    assert page.evaluate("window.__violations") == []
    # What an injected inline script would do, refused.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_function("() => window.__violations.length > 0", timeout=5000)
    assert page.evaluate("window.__ran") is None
    page.close()


class _HostPage(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def host_site():
    """Serves a page of another site (`html`) on `port`, as an embedding site would."""
    started = []

    def serve(body: str, port: int) -> str:
        handler = type("Page", (_HostPage,), {"body": body.encode("utf-8")})
        httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"http://127.0.0.1:{port}/"

    yield serve
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def embed_snippet(web_url: str) -> str:
    """The snippet the widget's page tells a site to paste (its <pre>)."""
    page = requests.get(web_url + "/", timeout=TIMEOUT).text
    return html.unescape(re.search(r"<pre>(.*?)</pre>", page, re.S).group(1))


@pytest.mark.e2e
def test_the_embed_snippet_works_on_a_configured_site_and_not_on_another(browser, web_url, servers, host_site):
    snippet = embed_snippet(web_url)
    assert f'src="{web_url}/widget.js"' in snippet
    site = "<!doctype html><html lang='ar' dir='rtl'><head><meta charset='utf-8'></head><body>{}</body></html>"
    configured = host_site(site.format(snippet), servers.embed_port)
    page = browser.new_page()
    page.goto(configured)
    page.wait_for_selector(".musaed-chat[data-ready=true]", timeout=TIMEOUT * 1000)
    ask_and_wait(page, "ضاعت هويتي", f"1. {CAT.services['report_lost_id'].steps[0]}")
    page.close()

    other = host_site(site.format(snippet), free_port())  # not in MUSAED_WEB_ORIGINS
    page = browser.new_page()
    page.goto(other)
    page.wait_for_selector(".musaed-chat", timeout=TIMEOUT * 1000)  # the script runs...
    page.wait_for_timeout(4000)
    assert page.locator(".musaed-chat").get_attribute("data-ready") is None  # ...but its socket is refused
    page.close()


@pytest.mark.e2e
def test_no_site_can_frame_the_widget_s_page(browser, web_url, servers, host_site):
    framing = host_site(f"<!doctype html><iframe src='{web_url}/' width=600 height=600></iframe>", free_port())
    page = browser.new_page()
    page.goto(framing)
    page.wait_for_timeout(2000)
    frame = page.frames[1]
    assert frame.url.startswith("chrome-error:") or frame.evaluate("!document.querySelector('.musaed-chat')")
    page.close()
