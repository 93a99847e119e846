"""The web front: the chat widget's page and files, and request receipts.

    python -m web.serve --port 8000 --rasa-url http://localhost:5005

Everything is served from this repository and web/node_modules (npm ci):
no CDN at run time. Every response carries the security headers of
musaed/web_security.py; the page's CSP lets it load only its own files, the
receipts' images (MUSAED_PUBLIC_URL) and talk only to the Rasa server.

The page and its files go gzipped to a browser that takes it, each with an
ETag: the page links its files with their hash (`?v=`), so a repeat visit
takes them from the browser's cache, and asks only whether the page changed
(304). Files compressed once at start, in memory: four small files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
from pathlib import Path
from typing import Optional

from aiohttp import web

from musaed import logsafe, receipt, settings, store, web_security

WEB = Path(__file__).resolve().parent

SOCKET_IO = WEB / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


# A file linked with its hash never changes at that address; one asked for without it
# (an embedding site's snippet) is checked with the server each time.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class Asset:
    """A file's bytes, gzipped and hashed once."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.gzipped = gzip.compress(body, 9, mtime=0)
        self.version = hashlib.sha256(body).hexdigest()[:16]
        self.content_type = content_type

    def response(self, request: web.Request, headers: Optional[dict] = None) -> web.Response:
        etag = f'"{self.version}"'
        cache = IMMUTABLE if request.query.get("v") == self.version else REVALIDATE
        common = {"ETag": etag, "Cache-Control": cache, "Vary": "Accept-Encoding", **(headers or {})}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=common)
        common["Content-Type"] = self.content_type
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return web.Response(body=self.gzipped, headers={**common, "Content-Encoding": "gzip"})
        return web.Response(body=self.body, headers=common)


def make_app(rasa_url: str, web_url: str = "") -> web.Application:
    if not SOCKET_IO.exists():
        raise SystemExit(f"{SOCKET_IO} is missing: run `make install` (npm ci in web/)")
    files = {
        "/widget.js": Asset((WEB / "widget.js").read_bytes(), "application/javascript; charset=utf-8"),
        "/widget.css": Asset((WEB / "widget.css").read_bytes(), "text/css; charset=utf-8"),
        "/page.css": Asset((WEB / "page.css").read_bytes(), "text/css; charset=utf-8"),
        "/vendor/socket.io.min.js": Asset(SOCKET_IO.read_bytes(), "application/javascript; charset=utf-8"),
    }
    page = (WEB / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{RASA_URL}}", html.escape(rasa_url)).replace("{{WEB_URL}}", html.escape(web_url))
    for path, asset in files.items():  # the page's own links carry each file's hash
        page = page.replace(f'"{path}"', f'"{path}?v={asset.version}"')
    # Receipts are linked at the public address the actions know (actions/requests.py).
    public_url = settings.PUBLIC_URL.get()
    csp = web_security.page_csp(
        page,
        # The receipts' origin too: the widget fetches a receipt to share it as a file.
        connect=["'self'", *web_security.socket_sources(rasa_url), web_security.origin_of(public_url)],
        img=["'self'", web_security.origin_of(public_url)],
    )

    index_page = Asset(page.encode("utf-8"), "text/html; charset=utf-8")

    async def index(request: web.Request) -> web.Response:
        return index_page.response(request, {"Content-Security-Policy": csp})

    def static(asset: Asset):
        async def handler(request: web.Request) -> web.Response:
            return asset.response(request)

        return handler

    async def receipt_png(request: web.Request) -> web.Response:
        number = request.match_info["number"]
        # Signed links only: tracking numbers must not be enumerable.
        if not receipt.verify(number, request.query.get("sig", ""), receipt.receipt_secret()):
            raise web.HTTPNotFound()
        db = store.open_db()
        if store.get_request(db, number) is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=receipt.receipt_for(db, number, request.query.get("lang", "ar")),
            content_type="image/png",
            headers={"Cache-Control": "no-store"},  # a person's request: not kept in shared caches
        )

    app = web.Application()
    app.on_response_prepare.append(web_security.aiohttp_hook())
    app.router.add_get("/", index)
    for path, asset in files.items():
        app.router.add_get(path, static(asset))
    app.router.add_get("/receipts/{number}.png", receipt_png)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--rasa-url", default="http://localhost:5005")
    args = parser.parse_args()
    logsafe.install()  # ids, codes and phones masked in its log, one record a line
    web.run_app(make_app(args.rasa_url, f"http://{args.host}:{args.port}"), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
