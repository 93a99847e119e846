"""musaed-care: customer care on the command line (Arabic text; --json for machines).

musaed-care ask "ضاعت هويتي"
musaed-care request --tracking-number MSD-12345678 | --national-id 1010000014
musaed-care status MSD-12345678 approved
musaed-care status MSD-12345678 rejected --reason "الصورة غير واضحة"
musaed-care document MSD-12345678 <document id> [--out FILE]   (a request's document, saved 0600; audited)
musaed-care conversation <sender id>
musaed-care handovers
musaed-care fallbacks
musaed-care audit [--national-id …] [--agent …]   (supervisors: MUSAED_CARE_SUPERVISORS)
musaed-care live-stats [--days 7]   (live chats: ratings, waiting and handling times per day and per agent)
musaed-care notifications [--limit 50]   (the outbox: queued, sent, failed per channel; the failed, with why)
musaed-care purge          (retention: MUSAED_RETENTION, musaed/retention.py)
musaed-care settings       (every setting and its value here; secrets only as set or unset)

Every command but purge and settings needs the agent's token in MUSAED_CARE_TOKEN, one of
MUSAED_CARE_TOKENS as for the API: the agent's name comes from it, signs each
change and each row of the care audit. People's text is printed without
control characters (a terminal escape typed in a message cannot reach yours).

It prints only its answer; what it logs (each lookup, library warnings) goes to
MUSAED_CARE_LOG (default var/care-cli.log). `ask` asks the running care
server (--server, MUSAED_CARE_URL, default http://127.0.0.1:5080, with the
agent's token in MUSAED_CARE_TOKEN), which has the model loaded and answers
at once; only when none answers does it load the model itself (seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import re
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

from care import auth, default_model, default_tracker_db
from musaed import conversations, documents, files, help_desk, logsafe, settings, store
from musaed.identity import mask_id
from musaed.office_hours import RIYADH

log = logging.getLogger("care")

# The command line's own framing (the agents read it; answers come from the catalogue).
NO_REQUESTS = "لا توجد طلبات مطابقة."
NO_CONVERSATION = "لا توجد محادثة بهذا المعرّف."
NO_HANDOVERS = "لا توجد محادثات محوّلة إلى موظف."
NO_FALLBACKS = "لا توجد رسائل لم يفهمها البوت."
NO_AUDIT = "لا توجد سجلات تدقيق مطابقة."
CHANGED = "تم تغيير حالة الطلب {tracking_number} إلى: {status}"
NO_TOKEN = (
    "يلزم رمز الموظف: ضع رمزك في MUSAED_CARE_TOKEN (أحد رموز MUSAED_CARE_TOKENS).\n"
    "An agent token is needed: put yours in MUSAED_CARE_TOKEN (one of MUSAED_CARE_TOKENS)."
)
NOT_SUPERVISOR = "سجل التدقيق للمشرفين فقط (MUSAED_CARE_SUPERVISORS)."
EXISTS = "يوجد ملف بهذا الاسم، فلم أكتب فوقه: {path}"

# What a terminal would act on rather than show: C0 and C1 controls (ESC, CSI…), DEL, and the
# characters that reorder text (bidi embeddings, overrides and isolates, line separators).
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def shown(text, newlines: bool = False) -> str:
    """People's text fit for a terminal: C0 controls as their visible symbols (ESC → ␛), the
    others as <U+202E>; a newline (or tab) kept only where asked, else ⏎."""

    def visible(match: re.Match) -> str:
        ch = match.group()
        return chr(0x2400 + ord(ch)) if ord(ch) < 0x20 else "␡" if ch == "\x7f" else f"<U+{ord(ch):04X}>"

    text = _UNSHOWABLE.sub(visible, "" if text is None else str(text))
    return text if newlines else text.replace("\n", " ⏎ ").replace("\t", " ")


def _json_text(data) -> str:
    """JSON for the terminal: json.dumps escapes C0 controls itself; C1 and bidi controls too here."""
    return _UNSHOWABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(data, ensure_ascii=False, indent=2))


def _pct(confidence) -> str:
    return f"{float(confidence or 0):.0%}"


def _at(iso: Optional[str]) -> str:
    """An event's time in Riyadh, the zone named: agents and the people they help read local time."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso[:16].replace("T", " ")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(RIYADH).strftime("%Y-%m-%d %H:%M") + " (توقيت الرياض)"


def format_request(r: dict) -> str:
    lines = [
        f"الطلب {r['tracking_number']}",
        f"• الخدمة: {r['service']}",
        f"• مقدّم الطلب: {shown(r['applicant_name'])} ({r['applicant_id']})",
        f"• المستفيد: {shown(r['beneficiary_name'])} ({r['beneficiary_id']})",
        f"• الحالة: {r['status_text']} ({r['status']})",
        f"• المحادثة: {shown(r['conversation_id'])}",
    ]
    for d in r.get("documents") or []:
        lines.append(
            f"• مستند: {shown(d['name'])} — {documents.describe(d['file_type'], d['size'])} — "
            f"SHA-256 {d['sha256'][:12]}… — المعرّف {d['id']}"
        )
    lines.append("سجل الحالة:")
    for n, e in enumerate(r["history"], start=1):
        line = f"{n}. {e['status_text']} — {_at(e['at'])} — {shown(e['actor'])}"
        if e.get("note"):
            line += f" — السبب: {shown(e['note'])}"
        lines.append(line)
    return "\n".join(lines)


def format_message(m: dict) -> str:
    at = _at(m.get("time"))
    if m["role"] == "user":
        # A tapped button reads as its title, what the person saw ("نعم، أؤكد"), not "/affirm".
        said = f"[{shown(m['title'])}]" if m.get("title") else shown(m["text"])
        line = f"[{at}] 👤 {said}  ({shown(m['intent'])} {_pct(m['confidence'])})"
        if m.get("original_intent"):
            o = m["original_intent"]
            line += f" ← أقرب نية: {shown(o['name'])} {_pct(o['confidence'])}"
        return line
    if m["role"] == "bot":
        # The bot's own lines are kept; what a person's message put in them is still shown harmless.
        line = f"[{at}] 🤖 {shown(m['text'] or '', newlines=True)}"
        if m.get("buttons"):
            line += "\n    [" + " | ".join(shown(b or "") for b in m["buttons"]) + "]"
        return line
    if m["role"] == "handover":
        return f"[{at}] — حُوّلت المحادثة إلى موظف —"
    return f"[{at}] — جلسة جديدة —"


def _print(args, data, text: str) -> None:
    if args.json:
        print(_json_text(data))
    else:
        print(text)


def _who(args) -> str:
    return getattr(args, "agent", None) or f"cli:{getpass.getuser()}"


def _agent(args) -> Optional[str]:
    """The agent whose token is in MUSAED_CARE_TOKEN (or `ask --token`), checked against
    MUSAED_CARE_TOKENS as the API does; None (and a plain message) without a valid one."""
    try:
        tokens = auth.tokens_from_env()
    except ValueError as error:
        print(error, file=sys.stderr)
        return None
    agent = auth.agent_for_token(getattr(args, "token", None) or settings.CARE_TOKEN.given(), tokens)
    if agent is None:
        log.warning("refused %s: no valid agent token", args.command)
        print(NO_TOKEN, file=sys.stderr)
    return agent


# -- subcommands ---------------------------------------------------------------


def _ask_server(args, question: str) -> Optional[dict]:
    """The running care server's answer, or None when there is none to ask (or it refuses)."""
    import requests  # only here: the other commands never speak HTTP

    if not args.token:
        return None
    try:
        r = requests.get(
            args.server.rstrip("/") + "/care/answer",
            params={"q": question},
            headers={"Authorization": f"Bearer {args.token}"},
            timeout=5,
        )
    except requests.RequestException as error:
        log.info("care server %s not reached (%s): loading the model here", args.server, type(error).__name__)
        return None
    if r.status_code != 200:
        log.warning("care server %s answered %s: loading the model here", args.server, r.status_code)
        return None
    return r.json()


def cmd_ask(args) -> int:
    results, ranker = [], None
    for question in args.question:
        # The server's threshold is the default one; another is applied here, with the model.
        result = _ask_server(args, question) if args.threshold == help_desk.THRESHOLD else None
        if result is None:
            if ranker is None:
                from care.model import Ranker

                ranker = Ranker(args.model or default_model())
            parsed = asyncio.run(ranker.parse(question))
            found = help_desk.answer(
                parsed.get("intent_ranking") or [],
                threshold=args.threshold,
                question=question,
                facts=parsed.get("facts") or [],
            )
            result = {"question": question, **found}
        results.append(result)
        log.info("agent %s: answer lookup → %s", _who(args), result["service"] or "not matched")
    if args.json:
        print(_json_text(results[0] if len(results) == 1 else results))
    else:
        print("\n\n".join(r["text"] for r in results))
    return 0


def cmd_request(args) -> int:
    if not (args.tracking_number or args.national_id):
        print("اكتب --tracking-number أو --national-id", file=sys.stderr)
        return 2
    found = help_desk.lookup_requests(
        store.open_db(args.db), args.agent, tracking_number=args.tracking_number, national_id=args.national_id
    )
    log.info(
        "agent %s: request lookup tracking_number=%s national_id=%s → %d found",
        _who(args),
        "given" if args.tracking_number else "-",
        mask_id(args.national_id) if args.national_id else "-",
        len(found),
    )
    _print(args, {"requests": found}, "\n\n".join(map(format_request, found)) or NO_REQUESTS)
    return 0 if found else 1


def cmd_status(args) -> int:
    try:
        changed = help_desk.change_status(
            store.open_db(args.db), args.tracking_number, args.status, args.agent, reason=args.reason
        )
    except help_desk.CareError as e:
        log.info("agent %s: status change refused (%s)", args.agent, e.code)
        if args.json:
            print(_json_text({"error": e.code, "message": e.message}))
        else:
            print(e.message, file=sys.stderr)
        return 1
    log.info(
        "agent %s: %s moved to %s at %s",
        args.agent,
        changed["tracking_number"],
        changed["status"],
        changed["history"][-1]["at"],
    )
    _print(
        args,
        {"request": changed},
        CHANGED.format(tracking_number=changed["tracking_number"], status=changed["status_text"])
        + "\n"
        + format_request(changed),
    )
    return 0


def cmd_document(args) -> int:
    """Save one document of a request (0600, never over an existing file); audited as on the page."""
    db = store.open_db(args.db)
    known = store.get_document(db, args.id)
    out = Path(args.out or (help_desk.document_file_name(known) if known else f"{args.id}.bin"))
    if out.exists():
        print(EXISTS.format(path=out), file=sys.stderr)
        return 1
    try:
        row, data = help_desk.download_document(db, args.agent, args.tracking_number, args.id)
    except help_desk.CareError as e:
        log.info("agent %s: document download refused (%s)", args.agent, e.code)
        print(e.message, file=sys.stderr)
        return 1
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    log.info("agent %s: downloaded a document of %s", args.agent, row["tracking_number"])
    _print(args, {"file": str(out), "size": row["size"], "sha256": row["sha256"]}, str(out))
    return 0


def cmd_conversation(args) -> int:
    tracker_db = args.tracker_db or default_tracker_db()
    messages = help_desk.read_conversation(tracker_db, store.open_db(args.db), args.agent, args.sender_id)
    people = conversations.verified_people(tracker_db, args.sender_id) if messages else []
    log.info(
        "agent %s: read conversation %s of %s (%d messages)",
        args.agent,
        args.sender_id,
        mask_id(people[-1]) if people else "no verified person",
        len(messages),
    )
    _print(
        args,
        {"sender_id": args.sender_id, "messages": messages},
        "\n".join(map(format_message, messages)) or NO_CONVERSATION,
    )
    return 0 if messages else 1


def cmd_handovers(args) -> int:
    found = help_desk.list_conversations(
        args.tracker_db or default_tracker_db(), store.open_db(args.db), args.agent, "handovers", limit=args.limit
    )
    log.info("agent %s: listed %d handovers", args.agent, len(found))
    _print(
        args,
        {"conversations": found},
        "\n".join(f"• {_at(c['time'])} — {shown(c['sender_id'])} — «{shown(c['text'] or '')}»" for c in found)
        or NO_HANDOVERS,
    )
    return 0


def cmd_fallbacks(args) -> int:
    found = help_desk.list_conversations(
        args.tracker_db or default_tracker_db(), store.open_db(args.db), args.agent, "fallbacks", limit=args.limit
    )
    log.info("agent %s: listed %d fallbacks", args.agent, len(found))

    def line(m: dict) -> str:
        o = m.get("original_intent") or {}
        return (
            f"• {_at(m['time'])} — {shown(m['sender_id'])} — «{shown(m['text'] or '')}» "
            f"(أقرب نية: {shown(o.get('name', '-'))} {_pct(o.get('confidence'))})"
        )

    _print(args, {"messages": found}, "\n".join(map(line, found)) or NO_FALLBACKS)
    return 0


def cmd_audit(args) -> int:
    if args.agent not in auth.supervisors_from_env():
        log.info("agent %s: audit refused (not a supervisor)", args.agent)
        print(NOT_SUPERVISOR, file=sys.stderr)
        return 2
    rows = help_desk.read_audit(
        store.open_db(args.db), args.agent, national_id=args.national_id, of_agent=args.of_agent, limit=args.limit
    )
    log.info("agent %s: read the care audit (%d rows)", args.agent, len(rows))
    _print(
        args,
        {"audit": rows},
        "\n".join(
            f"• {_at(r['at'])} — {shown(r['agent'])} — {r['action']} — {r['national_id'] or '-'} — "
            f"{shown(r['subject'] or '-')} — {shown(r['detail'] or '')}"
            for r in rows
        )
        or NO_AUDIT,
    )
    return 0


def cmd_live_stats(args) -> int:
    from musaed import care_desk

    found = care_desk.stats(store.open_db(args.db), days=args.days)
    store.add_care_audit(store.open_db(args.db), agent=args.agent, action="handover_stats", detail=f"{args.days} days")
    log.info("agent %s: live chat statistics (%d days)", args.agent, args.days)

    def table(rows: list, key: str, title: str) -> str:
        head = f"{title} | طلبات | استُلمت | متوسط الانتظار (ث) | متوسط المعالجة (ث) | التقييمات | متوسط التقييم"
        lines = [
            " | ".join(
                "-" if v is None else str(v)
                for v in (
                    shown(str(r[key])),
                    r["asked"],
                    r["handled"],
                    r["mean_wait_seconds"],
                    r["mean_handling_seconds"],
                    r["ratings"],
                    r["mean_rating"],
                )
            )
            for r in rows
        ]
        return "\n".join([head, *lines]) if lines else f"{title}: لا توجد محادثات مع موظفين."

    _print(args, found, table(found["per_day"], "day", "اليوم") + "\n\n" + table(found["per_agent"], "agent", "الموظف"))
    return 0


NO_NOTIFICATIONS = "لا توجد إشعارات."
STATE_NAMES = {"queued": "في الانتظار", "sent": "أُرسلت", "failed": "تعذّر إرسالها"}


def cmd_notifications(args) -> int:
    found = help_desk.notification_overview(store.open_db(args.db), args.agent, limit=args.limit)
    log.info("agent %s: read the notifications (%d failed)", args.agent, len(found["failed"]))
    states = help_desk.NOTIFICATION_STATES
    lines = []
    if found["channels"]:
        lines.append(" | ".join(["القناة", *(STATE_NAMES[s] for s in states)]))
        lines += [" | ".join([c["channel"], *(str(c[s]) for s in states)]) for c in found["channels"]]
    if found["failed"]:
        lines.append(f"{STATE_NAMES['failed']}:")
        lines += [
            f"• {f['id']} — {f['kind']} {f['tracking_number'] or ''} ({shown(f['about'])}) — {f['national_id']} — "
            f"{f['channel']} → {f['route'] or '-'} — {f['attempts']} محاولات — {shown(f['last_error'])} — "
            f"{_at(f['created_at'])}"
            for f in found["failed"]
        ]
    _print(args, found, "\n".join(lines) or NO_NOTIFICATIONS)
    return 0


def cmd_purge(args) -> int:
    from musaed import retention

    counts = retention.purge(store.open_db(args.db), args.tracker_db or default_tracker_db())
    log.info("%s: purged %s", _who(args), retention.describe(counts))
    _print(args, {"purged": counts}, "حُذف: " + retention.describe(counts))
    return 0


def cmd_settings(args) -> int:
    """Every environment variable Musaed reads (musaed/settings.py), with its value here."""
    if args.json:
        print(_json_text(settings.report()))
    else:
        sys.stdout.write(settings.describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine output (JSON)")
    # The agent is whoever MUSAED_CARE_TOKEN belongs to: no option names one.
    who = argparse.ArgumentParser(add_help=False)
    app_db = argparse.ArgumentParser(add_help=False)
    app_db.add_argument("--db", type=Path, default=None, help="default: MUSAED_DB or var/musaed.db")
    trackers = argparse.ArgumentParser(add_help=False)
    trackers.add_argument(
        "--tracker-db",
        type=str,
        default=None,
        help="Rasa's tracker store, a SQLite file or postgresql:// URL (default: MUSAED_TRACKER_DB, var/trackers.db)",
    )

    parser = argparse.ArgumentParser(
        prog="musaed-care",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ask", parents=[common, who], help="the services a question matches, and the answer")
    p.add_argument("question", nargs="+", help="the question, in Arabic (several: one answer each)")
    p.add_argument("--model", type=Path, default=None, help="default: models/musaed.tar.gz")
    p.add_argument("--threshold", type=float, default=help_desk.THRESHOLD)
    p.add_argument(
        "--server",
        default=settings.CARE_URL.get(),
        help="the care server to ask first (default: MUSAED_CARE_URL or http://127.0.0.1:5080)",
    )
    p.add_argument("--token", default=settings.CARE_TOKEN.given(), help="your agent token (MUSAED_CARE_TOKEN)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("request", parents=[common, who, app_db], help="find requests with their history")
    p.add_argument("--tracking-number")
    p.add_argument("--national-id")
    p.set_defaults(func=cmd_request)

    p = sub.add_parser("status", parents=[common, app_db], help="move a request to a new status")
    p.add_argument("tracking_number")
    p.add_argument("status", help="one of: " + ", ".join(help_desk.AGENT_STATUSES))
    p.add_argument("--reason", help="required for rejected")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("document", parents=[common, app_db], help="save one document of a request (audited)")
    p.add_argument("tracking_number")
    p.add_argument("id", help="the document's id (musaed-care request lists them)")
    p.add_argument("--out", help="the file to write (default: <tracking number>-<document>.<type>, here)")
    p.set_defaults(func=cmd_document)

    p = sub.add_parser("conversation", parents=[common, who, app_db, trackers], help="a conversation's transcript")
    p.add_argument("sender_id")
    p.set_defaults(func=cmd_conversation)

    for name, func, what in (
        ("handovers", cmd_handovers, "conversations handed over to a person"),
        ("fallbacks", cmd_fallbacks, "messages the bot did not understand"),
    ):
        p = sub.add_parser(name, parents=[common, who, app_db, trackers], help=what)
        p.add_argument("--limit", type=int, default=100)
        p.set_defaults(func=func)

    p = sub.add_parser("audit", parents=[common, app_db], help="the care audit: who read or changed whose record")
    p.add_argument("--national-id", help="whose records")
    p.add_argument("--agent", dest="of_agent", help="by which agent")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "live-stats", parents=[common, app_db], help="live chats: ratings, waiting and handling times per day and agent"
    )
    p.add_argument("--days", type=int, default=7, help="the last this many days (default 7)")
    p.set_defaults(func=cmd_live_stats)

    p = sub.add_parser(
        "notifications",
        parents=[common, app_db],
        help="the outbox: queued, sent and failed per channel, and the failed ones with why",
    )
    p.add_argument("--limit", type=int, default=50, help="at most this many failed ones (newest first)")
    p.set_defaults(func=cmd_notifications)

    p = sub.add_parser(
        "purge",
        parents=[common, who, app_db, trackers],
        help=f"delete what is past its retention (MUSAED_RETENTION, default {settings.RETENTION.default})",
    )
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("settings", parents=[common], help="every setting and its value here (secrets: set or unset)")
    p.set_defaults(func=cmd_settings)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is cmd_settings:  # reads nothing but the environment: no log, no token
        return cmd_settings(args)
    files.private()  # var/care-cli.log and any database it creates: 0600
    # TensorFlow's C++ side writes straight to the terminal, past Python's
    # logging: keep it to errors whatever the caller's environment says.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # Only the answer on the terminal: the lookups, and what Rasa, TensorFlow and
    # matplotlib warn of when the model loads, go to the log file.
    path = Path(settings.CARE_LOG.get())
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logsafe.install()  # ids, codes and phones masked in the log, one record a line; warnings included
    warnings.simplefilter("default")
    log.setLevel(logging.INFO)
    if args.func is not cmd_purge:  # purge is the operator's (and a timer's), not an agent's
        args.agent = _agent(args)
        if args.agent is None:
            return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
