"""The web front: the chat widget's page and files, and request receipts.

    python -m web.serve --port 8000 --rasa-url http://localhost:5005

Everything is served from this repository and web/node_modules (npm ci):
no CDN at run time. Every response carries the security headers of
musaed/web_security.py; the page's CSP lets it load only its own files, the
receipts' images (MUSAED_PUBLIC_URL) and talk only to the Rasa server.
"""

from __future__ import annotations

import argparse
import html
from pathlib import Path

from aiohttp import web

from musaed import logsafe, receipt, settings, store, web_security

WEB = Path(__file__).resolve().parent

SOCKET_IO = WEB / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


def make_app(rasa_url: str, web_url: str = "") -> web.Application:
    page = (WEB / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{RASA_URL}}", html.escape(rasa_url)).replace("{{WEB_URL}}", html.escape(web_url))
    # Receipts are linked at the public address the actions know (actions/requests.py).
    public_url = settings.PUBLIC_URL.get()
    csp = web_security.page_csp(
        page,
        connect=["'self'", *web_security.socket_sources(rasa_url)],
        img=["'self'", web_security.origin_of(public_url)],
    )

    async def index(_: web.Request) -> web.Response:
        return web.Response(
            text=page, content_type="text/html", charset="utf-8", headers={"Content-Security-Policy": csp}
        )

    def static(path: Path, content_type: str):
        async def handler(_: web.Request) -> web.Response:
            return web.Response(body=path.read_bytes(), content_type=content_type, charset="utf-8")

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

    if not SOCKET_IO.exists():
        raise SystemExit(f"{SOCKET_IO} is missing: run `make install` (npm ci in web/)")
    app = web.Application()
    app.on_response_prepare.append(web_security.aiohttp_hook())
    app.router.add_get("/", index)
    app.router.add_get("/widget.js", static(WEB / "widget.js", "application/javascript"))
    app.router.add_get("/widget.css", static(WEB / "widget.css", "text/css"))
    app.router.add_get("/page.css", static(WEB / "page.css", "text/css"))
    app.router.add_get("/vendor/socket.io.min.js", static(SOCKET_IO, "application/javascript"))
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
