"""What every page and API we serve to browsers sends, and which web origins may use the bot.

One setting, ``MUSAED_WEB_ORIGINS``: the origins (``scheme://host[:port]``,
separated by commas or spaces) of the pages allowed to talk to the bot from a
browser: the web page itself and every site that embeds the widget. Default:
the local web page, ``http://localhost:8000 http://127.0.0.1:8000``. The Rasa
server's CORS (``rasa run --cors``) and the widget's socket (its Origin
check) both follow it; a browser on any other origin gets no
``Access-Control-Allow-Origin`` and its socket is refused. ``*`` is refused:
Rasa's CORS sends credentials, so a wildcard would let any site act as the
person.

Headers (the widget page, its files and receipts, customer care's page and
API, the Rasa server): a Content-Security-Policy (scripts and styles from the
page's own origin or by hash, never inline otherwise; the socket only to the
Rasa server; no framing), ``X-Frame-Options: DENY``, ``nosniff``, no referrer,
and no version banner in ``Server``. The widget embeds as a script on the host
page, not a frame, so refusing frames does not stop it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional
from urllib.parse import urlsplit

from musaed import settings

DEFAULT_WEB_ORIGINS = tuple(settings.WEB_ORIGINS.default.split())
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

# What an API (JSON, images) allows: nothing to run, nothing to frame it.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Sent instead of the framework's name and version.
SERVER = "musaed"


def web_origins(env: Optional[Mapping[str, str]] = None) -> List[str]:
    """The configured web origins (``MUSAED_WEB_ORIGINS``), each ``scheme://host[:port]``."""
    value = settings.WEB_ORIGINS.get(env)
    origins = [o.rstrip("/") for o in re.split(r"[\s,]+", value) if o.strip()]
    if not origins:
        return list(DEFAULT_WEB_ORIGINS)
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{settings.WEB_ORIGINS.name}: {origin!r} is not an origin like https://example.gov.sa "
                "(no wildcard, path or trailing text)"
            )
    return list(dict.fromkeys(origins))


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of `url`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def socket_sources(url: str) -> List[str]:
    """The CSP sources a socket.io client talking to `url` needs: its origin, over HTTP and websocket."""
    origin = origin_of(url)
    scheme, rest = origin.split("://", 1)
    return [origin, f"{'wss' if scheme == 'https' else 'ws'}://{rest}"]


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
_INLINE_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)
_STYLE_ATTR = re.compile(r"""\sstyle=(?:"([^"]*)"|'([^']*)')""", re.I)


def page_csp(html: str, connect: Iterable[str] = ("'self'",), img: Iterable[str] = ("'self'",)) -> str:
    """The CSP for a page: its own files, and each inline script and style it has allowed by hash."""
    scripts = [_hash(s) for s in _INLINE_SCRIPT.findall(html)]
    styles = [_hash(s) for s in _INLINE_STYLE.findall(html)]
    attributes = sorted({_hash(a or b) for a, b in _STYLE_ATTR.findall(html)})
    style_src = ["'self'", *styles] + (["'unsafe-hashes'", *attributes] if attributes else [])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(["'self'", *scripts]),
            "style-src " + " ".join(style_src),
            "img-src " + " ".join(dict.fromkeys([*img, "data:"])),
            "connect-src " + " ".join(dict.fromkeys(connect)),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def headers(csp: str = API_CSP) -> Dict[str, str]:
    """The security headers of one response."""
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def aiohttp_hook(csp: str = API_CSP) -> Callable[[Any, Any], Awaitable[None]]:
    """An aiohttp ``on_response_prepare`` handler: every response (errors too) gets the
    headers; a response that set its own CSP (a page) keeps it."""

    async def on_prepare(_request: Any, response: Any) -> None:
        for name, value in headers(csp).items():
            response.headers.setdefault(name, value)
        # aiohttp would send "Python/3.10 aiohttp/3.9.5".
        response.headers["Server"] = SERVER

    return on_prepare
