"""The customer-care HTTP API and the agents' page.

    MUSAED_CARE_TOKENS="huda:…,omar:…" python -m care.server --port 5080

GET /care/ is the page (no data in it); every other /care/ route needs
`Authorization: Bearer <token>` and answers 401 with no data without one.

    GET  /care/answer?q=…                        matched services and the catalogue's answer
    GET  /care/statuses                          the statuses an agent may set
    GET  /care/requests?tracking_number=…|national_id=…   requests with their history
    POST /care/requests/{tracking_number}/status {"status": …, "reason": …}   409 on a conflict
    GET  /care/requests/{tracking_number}/documents/{id}   a request's document, as a download (audited)
    GET  /care/conversations/{sender_id}         a transcript from the tracker store
    GET  /care/handovers                         conversations handed over to a person
    GET  /care/fallbacks                         messages the bot did not understand
    GET  /care/audit?national_id=…|agent=…       the care audit (supervisors only: MUSAED_CARE_SUPERVISORS)
    GET  /care/notifications                     the outbox: queued, sent and failed per channel; the failed, with why

Live handover (musaed/care_desk.py, docs/care.md):

    GET  /care/queue                             waiting conversations (place, wait, language, channel) and held ones
    GET  /care/events                            server-sent events: `change` whenever a live chat moves
    POST /care/conversations/{id}/claim          take a waiting conversation (409 when another agent was first)
    POST /care/conversations/{id}/messages       {"text": …} to the person, on their channel
    POST /care/conversations/{id}/notes          {"text": …} for agents only
    POST /care/conversations/{id}/pass           {"to": agent}
    POST /care/conversations/{id}/release        back to the queue
    POST /care/conversations/{id}/close          the bot is back; the person is asked for a rating
    GET  /care/stats?days=7                      ratings, waiting and handling times per day and per agent

Every read and change of a person's data writes a row of the care audit in the
database (musaed/help_desk.py); the log says the same with ids masked.

A transcript's messages come for the page as they are to be read: a tapped
button as its title (`title`), and each text's language (`lang`) and its
pieces (`parts`, runs that go against the line's direction marked to be
isolated: musaed/bidi.py, the widget's rule).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import urlsplit

from aiohttp import web

from care import DEFAULT_PORT, auth, default_model, default_tracker_db
from musaed import (
    bidi,
    care_desk,
    catalogue,
    conversations,
    documents,
    files,
    help_desk,
    logsafe,
    settings,
    store,
    web_security,
)
from musaed.identity import mask_id
from musaed.language import LANGUAGES
from musaed.store import handover as handover_rows

log = logging.getLogger("care")
PAGE = Path(__file__).with_name("page.html")
MAX_QUESTION = 500


def _json(data, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False)


def _route(request: web.Request) -> str:
    """The route's pattern, not the path: paths carry sender ids and tracking numbers."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "?"


def _safe(number: str) -> str:
    """A tracking number fit for the log: anything else typed there is not repeated."""
    parsed, _ = store.parse_tracking_number(number)
    return parsed or "(not a tracking number)"


# A refused change: the request is not there (404), another one is open for it (409), or the input is wrong.
_STATUS_OF = {
    "not_found": 404,
    "conflict": 409,
    "already_claimed": 409,
    "not_yours": 409,
    "document_changed": 410,
}
# How often the live console's stream looks for changes, and says it is alive.
EVENTS_POLL_S = 0.25
EVENTS_PING_S = 15.0


def _error(status: int, code: str, message: str = "") -> web.Response:
    return _json({"error": code, "message": message}, status=status)


# -- transcripts as the page shows them ------------------------------------------


def taps(tracker_db, sender_id: str) -> List[Tuple[Any, Optional[str]]]:
    """(text, title) of each of the person's messages, in order: `title` is what they tapped
    when the message was a button's payload (musaed/conversations.py)."""
    return [(m["text"], m.get("title")) for m in conversations.transcript(tracker_db, sender_id) if m["role"] == "user"]


def parts(text: str) -> List[Dict[str, Any]]:
    """`text` in pieces, those to be isolated marked: musaed/bidi.py's runs (tracking
    numbers, ids, dates and Latin words in an Arabic line; Arabic names and addresses in an
    English one). Isolates the person typed are dropped first: only ours make pieces."""
    pieces = re.split(f"[{bidi.FSI}{bidi.PDI}]", bidi.isolate(bidi.strip(text)))
    return [{"text": piece, "isolate": i % 2 == 1} for i, piece in enumerate(pieces) if piece]


def readable(message: dict) -> dict:
    """A message with what the page shows of it (a tapped button's title, else its text): its
    language ("ar" when it has Arabic letters and no more Latin ones, musaed/bidi.py's rule
    that also decides what is isolated; else "en") and its pieces."""
    shown = message.get("title") or message.get("text")
    if isinstance(shown, str) and shown:
        message["lang"] = "ar" if bidi.is_arabic(bidi.strip(shown)) else "en"
        message["parts"] = parts(shown)
    return message


def make_app(
    model_path: Optional[os.PathLike],
    tracker_db: os.PathLike,
    tokens: Dict[str, str],
    db_path: Optional[os.PathLike] = None,
    ranker=None,
    supervisors: Optional[Set[str]] = None,
) -> web.Application:
    """The app: the model is loaded here, once (or `ranker` given, for tests).
    `supervisors`: the agents who may read the care audit (default MUSAED_CARE_SUPERVISORS)."""
    if supervisors is None:
        supervisors = auth.supervisors_from_env()
    if not tokens:
        raise ValueError(f'no agent tokens: set {settings.CARE_TOKENS.name}="name:token,…"')
    if ranker is None and model_path is not None:
        from care.model import Ranker

        ranker = Ranker(model_path)
    # A SQLite file, or the cluster's postgresql:// URL (musaed/conversations.py reads both).
    tracker_db = tracker_db if conversations.is_url(tracker_db) else Path(tracker_db)
    db = store.open_db(db_path)
    for lang in LANGUAGES:  # parsed now, not on an agent's first status change (0.9 s)
        catalogue.load(lang)
    page = PAGE.read_text(encoding="utf-8")
    page_csp = web_security.page_csp(page)

    @web.middleware
    async def require_agent(request: web.Request, handler: Callable[[web.Request], Awaitable]):
        if request.path in ("/care", "/care/") or not request.path.startswith("/care/"):
            return await handler(request)
        agent = auth.agent_for(request.headers.get("Authorization"), tokens)
        if agent is None:
            log.warning("refused %s %s from %s: no valid agent token", request.method, _route(request), request.remote)
            return web.json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": 'Bearer realm="musaed-care"'}
            )
        request["agent"] = agent
        care_desk.seen(db, agent)  # on duty: a person asking now is queued, not told to come back
        response = await handler(request)
        if not response.prepared:  # a stream has sent its own
            response.headers["Cache-Control"] = "no-store"
        return response

    async def index(_: web.Request) -> web.Response:
        return web.Response(
            text=page,
            content_type="text/html",
            charset="utf-8",
            headers={
                "Cache-Control": "no-store",
                # Its inline script and styles allowed by hash, nothing else inline (musaed/web_security.py).
                "Content-Security-Policy": page_csp,
            },
        )

    async def to_index(_: web.Request) -> web.Response:
        raise web.HTTPFound("/care/")

    async def answer(request: web.Request) -> web.Response:
        agent = request["agent"]
        question = (request.query.get("q") or "").strip()
        if not question:
            return _error(400, "question_required", "اكتب السؤال.")
        if ranker is None:
            return _error(503, "no_model", "النموذج غير محمّل.")
        parsed = await ranker.parse(question[:MAX_QUESTION])
        result = help_desk.answer(
            parsed.get("intent_ranking") or [], question=question[:MAX_QUESTION], facts=parsed.get("facts") or []
        )
        # The question itself is not logged: people paste ids and numbers into it.
        log.info(
            "agent %s: answer lookup → %s (%s)",
            agent,
            result["service"] or "not matched",
            result["confidence"] or result["top_intent"]["confidence"],
        )
        return _json({"question": question, **result})

    async def statuses(_: web.Request) -> web.Response:
        return _json({"statuses": help_desk.agent_statuses()})

    async def find(request: web.Request) -> web.Response:
        agent = request["agent"]
        number = (request.query.get("tracking_number") or "").strip() or None
        nid = (request.query.get("national_id") or "").strip() or None
        if not (number or nid):
            return _error(400, "query_required", "اكتب رقم الطلب أو رقم الهوية.")
        found = help_desk.lookup_requests(db, agent, tracking_number=number, national_id=nid)
        log.info(
            "agent %s: request lookup tracking_number=%s national_id=%s → %d found",
            agent,
            _safe(number) if number else "-",
            mask_id(nid) if nid else "-",
            len(found),
        )
        return _json({"requests": found})

    async def change(request: web.Request) -> web.Response:
        agent = request["agent"]
        number = request.match_info["tracking_number"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return _error(400, "status_required", "اختر الحالة الجديدة.")
        reason = body.get("reason")
        try:
            changed = help_desk.change_status(
                db, number, body["status"], agent, reason=reason if isinstance(reason, str) else None
            )
        except help_desk.CareError as e:
            log.info("agent %s: status change of %s refused (%s)", agent, _safe(number), e.code)
            return _error(_STATUS_OF.get(e.code, 400), e.code, e.message)
        log.info(
            "agent %s: %s moved to %s at %s",
            agent,
            changed["tracking_number"],
            changed["status"],
            changed["history"][-1]["at"],
        )
        return _json({"request": changed})

    async def document(request: web.Request) -> web.Response:
        """One document of a request, as a file to save (never shown inline: the page's own
        origin must not render what a person sent), checked against its hash, audited."""
        agent = request["agent"]
        number, document_id = request.match_info["tracking_number"], request.match_info["id"]
        try:
            row, data = help_desk.download_document(db, agent, number, document_id)
        except help_desk.CareError as e:
            log.info("agent %s: document of %s refused (%s)", agent, _safe(number), e.code)
            return _error(_STATUS_OF.get(e.code, 400), e.code, e.message)
        log.info(
            "agent %s: downloaded a document of %s (%s)",
            agent,
            row["tracking_number"],
            documents.describe(row["file_type"], row["size"]),
        )
        return web.Response(
            body=data,
            content_type=row["file_type"],
            headers={"Content-Disposition": f'attachment; filename="{help_desk.document_file_name(row)}"'},
        )

    async def conversation(request: web.Request) -> web.Response:
        agent = request["agent"]
        sender = request.match_info["sender_id"]
        messages = help_desk.read_conversation(tracker_db, db, agent, sender)
        if messages:
            messages = [readable(m) for m in messages]
        people = conversations.verified_people(tracker_db, sender) if messages else []
        log.info(
            "agent %s: read conversation %s of %s (%d messages)",
            agent,
            logsafe.clean(sender),
            mask_id(people[-1]) if people else "no verified person",
            len(messages),
        )
        live = care_desk.conversation(db, agent, sender) if handover_rows.latest_handover(db, sender) else None
        if not messages and live is None:
            return _error(404, "not_found", "لا توجد محادثة بهذا المعرّف.")
        if live is not None:
            live["messages"] = [readable(m) for m in live["messages"]]
        # `messages`: the bot's transcript; `live`: the person's and the agents' (and the notes).
        return _json(
            {
                "sender_id": sender,
                "state": live["state"] if live else "bot",
                "messages": messages,
                "live": live,
            }
        )

    # -- live handover ---------------------------------------------------------

    async def live_queue(request: web.Request) -> web.Response:
        found = care_desk.queue(db, request["agent"])
        found.update(me=request["agent"], agents=sorted(tokens))  # whom a conversation may be passed to
        log.info("agent %s: queue (%d waiting)", request["agent"], len(found["waiting"]))
        return _json(found)

    async def _body(request: web.Request) -> dict:
        try:
            body = await request.json()
        except ValueError:
            body = None
        return body if isinstance(body, dict) else {}

    async def live_action(request: web.Request) -> web.Response:
        agent, action = request["agent"], request.match_info["action"]
        conversation_id = request.match_info["id"]
        body = await _body(request) if action in ("messages", "notes", "pass") else {}
        try:
            if action == "claim":
                result = care_desk.claim(db, agent, conversation_id)
            elif action == "messages":
                result = care_desk.send(db, agent, conversation_id, body.get("text"))
            elif action == "notes":
                result = care_desk.note(db, agent, conversation_id, body.get("text"))
            elif action == "pass":
                result = care_desk.pass_to(db, agent, conversation_id, body.get("to"), agents=list(tokens))
            elif action == "release":
                result = care_desk.release(db, agent, conversation_id)
            else:
                result = care_desk.close(db, agent, conversation_id)
        except care_desk.HandoverError as refused:
            log.info("agent %s: %s of %s refused (%s)", agent, action, logsafe.clean(conversation_id), refused.code)
            return _error(_STATUS_OF.get(refused.code, 400), refused.code, refused.message)
        log.info("agent %s: %s in %s", agent, action, logsafe.clean(conversation_id))
        return _json(result)

    stopping = asyncio.Event()  # the server is shutting down: streams end, or it would wait for them

    async def end_streams(_: web.Application) -> None:
        stopping.set()

    async def live_events(request: web.Request) -> web.StreamResponse:
        """Server-sent events over an authenticated fetch (EventSource cannot send a token):
        `change` with the store's cursor whenever a live chat moves; the page then reads."""
        stream = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await stream.prepare(request)
        cursor, quiet = -1, 0.0
        try:
            while not stopping.is_set():
                now = handover_rows.last_message_id(db)
                if now != cursor:
                    cursor, quiet = now, 0.0
                    await stream.write(f"event: change\ndata: {json.dumps({'cursor': now})}\n\n".encode())
                elif quiet >= EVENTS_PING_S:
                    quiet = 0.0
                    care_desk.seen(db, request["agent"])  # the console is open: on duty
                    await stream.write(b": alive\n\n")
                await asyncio.sleep(EVENTS_POLL_S)
                quiet += EVENTS_POLL_S
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return stream

    async def live_stats(request: web.Request) -> web.Response:
        try:
            days = max(1, min(366, int(request.query.get("days", 7))))
        except ValueError:
            days = 7
        return _json(care_desk.stats(db, days=days))

    def _limit(request: web.Request) -> int:
        try:
            return max(1, min(500, int(request.query.get("limit", 100))))
        except ValueError:
            return 100

    async def handed_over(request: web.Request) -> web.Response:
        found = help_desk.list_conversations(tracker_db, db, request["agent"], "handovers", limit=_limit(request))
        for item in found:  # asked by a button («تحدث مع موظف»): its title, not "/request_human"
            if isinstance(item.get("text"), str) and item["text"].startswith("/"):
                titles = [
                    title for text, title in taps(tracker_db, item["sender_id"]) if text == item["text"] and title
                ]
                if titles:
                    item["title"] = titles[-1]
        log.info("agent %s: listed %d handovers", request["agent"], len(found))
        return _json({"conversations": found})

    async def not_understood(request: web.Request) -> web.Response:
        found = help_desk.list_conversations(tracker_db, db, request["agent"], "fallbacks", limit=_limit(request))
        log.info("agent %s: listed %d fallbacks", request["agent"], len(found))
        return _json({"messages": found})

    async def audit(request: web.Request) -> web.Response:
        agent = request["agent"]
        if agent not in supervisors:
            log.info("agent %s: audit refused (not a supervisor)", agent)
            return _error(403, "supervisors_only", "سجل التدقيق للمشرفين فقط.")
        nid = (request.query.get("national_id") or "").strip() or None
        rows = help_desk.read_audit(
            db, agent, national_id=nid, of_agent=request.query.get("agent"), limit=_limit(request)
        )
        log.info("agent %s: read the care audit (%s, %d rows)", agent, mask_id(nid) if nid else "all", len(rows))
        return _json({"audit": rows})

    async def outbox(request: web.Request) -> web.Response:
        found = help_desk.notification_overview(db, request["agent"], limit=_limit(request))
        log.info("agent %s: read the notifications (%d failed)", request["agent"], len(found["failed"]))
        return _json(found)

    app = web.Application(middlewares=[require_agent], client_max_size=64 * 1024)
    app.on_response_prepare.append(web_security.aiohttp_hook())  # nosniff, no framing, no version, on every answer
    app.router.add_get("/care", to_index)
    app.router.add_get("/care/", index)
    app.router.add_get("/care/answer", answer)
    app.router.add_get("/care/statuses", statuses)
    app.router.add_get("/care/requests", find)
    app.router.add_post("/care/requests/{tracking_number}/status", change)
    app.router.add_get("/care/requests/{tracking_number}/documents/{id}", document)
    app.on_shutdown.append(end_streams)
    app.router.add_get("/care/queue", live_queue)
    app.router.add_get("/care/events", live_events)
    app.router.add_get("/care/stats", live_stats)
    app.router.add_post("/care/conversations/{id:.+}/{action:claim|messages|notes|pass|release|close}", live_action)
    app.router.add_get("/care/conversations/{sender_id:.+}", conversation)
    app.router.add_get("/care/handovers", handed_over)
    app.router.add_get("/care/fallbacks", not_understood)
    app.router.add_get("/care/audit", audit)
    app.router.add_get("/care/notifications", outbox)
    return app


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("care")
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _without_password(where) -> str:
    """The tracker store for the log: the cluster's URL carries the database password."""
    text = str(where)
    password = urlsplit(text).password if "://" in text else None
    return text.replace(f":{password}@", ":***@", 1) if password else text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="musaed-care-server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--model", type=Path, default=None, help="default: models/musaed.tar.gz")
    parser.add_argument("--db", type=Path, default=None, help="default: MUSAED_DB or var/musaed.db")
    parser.add_argument(
        "--tracker-db",
        type=str,
        default=None,
        help="Rasa's tracker store, a SQLite file or postgresql:// URL (default: MUSAED_TRACKER_DB, var/trackers.db)",
    )
    args = parser.parse_args(argv)
    files.private()  # its logs and any database it creates: 0600
    logsafe.install()  # ids, codes and phones masked in every log line, one record a line
    configure_logging()
    try:
        tokens = auth.tokens_from_env()
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    if not tokens:
        print(
            f'Set {settings.CARE_TOKENS.name}="name1:token1,name2:token2": every care endpoint needs an agent token.',
            file=sys.stderr,
        )
        return 2
    model = args.model or default_model()
    tracker_db = args.tracker_db or default_tracker_db()
    log.info("loading %s …", model)
    app = make_app(model, tracker_db, tokens, db_path=args.db)
    log.info(
        "customer care on http://%s:%d/care/ for %d agents (tracker store %s)",
        args.host,
        args.port,
        len(tokens),
        _without_password(tracker_db),
    )
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
