"""Documents in the chat (issue 31): the documents step of a request, and a file at any other time.

A channel checks and keeps a file before the conversation hears of it
(channels/documents.py, musaed/documents.py) and passes the message
``/inform{"document": "<id>"}``, or ``/inform{"document_refused": "<why>"}``
for a file it refused. Here:

- At the request form's `documents` step (the service's `documents:` in the
  catalogue, asked for by name, one at a time), a document is taken as the
  one asked for and acknowledged with its name, type and size; a refused one
  gets its reason and the same document is asked for again; «ما عندي» says
  where to get it and keeps the request open in the conversation.
- Anywhere else (another step, no request, a conversation nobody has verified
  in yet) a file is answered «لا أطلب مستندات الآن» and deleted at once: a
  document is kept only for the request that asks for it, after the person
  has verified (never kept "until they verify").
- A request that stops (cancelled, switched, handed over) takes its staged
  documents with it; one that is made takes them into the request.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.form_slots import clear_form_slots
from actions.turn import ASKS, catalogue_for
from musaed import catalogue, documents, service_request, store

log = logging.getLogger(__name__)

STEP = "documents"  # the form step (slot) that takes documents


def sent(tracker: Tracker) -> Tuple[Optional[str], Optional[str]]:
    """(the id of the document the latest message carries, or why the channel refused the file)."""
    found: Dict[str, str] = {}
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") in (documents.DOCUMENT_ENTITY, documents.REFUSED_ENTITY):
            found.setdefault(entity["entity"], str(entity.get("value") or ""))
    return found.get(documents.DOCUMENT_ENTITY), found.get(documents.REFUSED_ENTITY)


def a_file(tracker: Tracker) -> bool:
    """Whether the latest message is a file (kept or refused) rather than words."""
    document_id, refused = sent(tracker)
    return document_id is not None or refused is not None


def at_documents_step(tracker: Tracker) -> bool:
    return (tracker.active_loop or {}).get("name") == "service_request_form" and tracker.get_slot(
        "requested_slot"
    ) == STEP


def say_not_now(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """A file no step asked for: answered, and what was kept of it deleted now."""
    document_id, _ = sent(tracker)
    if document_id:
        documents.discard(store.open_db(), document_id, tracker.sender_id)
    log.info("document in %s when none was asked for: not kept", tracker.sender_id)
    dispatcher.utter_message(text=catalogue_for(tracker).labels["document_not_now"])


class NoDocumentHere:
    """Mixed into a form's validation: a file at a step that takes none is answered and
    dropped, and the step is asked again (its slot mapping took the message as text)."""

    def takes_documents_now(self, tracker: Tracker) -> bool:
        return False

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> List[Dict]:
        if not a_file(tracker) or self.takes_documents_now(tracker):
            return await super().run(dispatcher, tracker, domain)  # type: ignore[misc]
        say_not_now(dispatcher, tracker)
        step = tracker.get_slot("requested_slot")
        events: List[Dict] = [SlotSet(step, None)] if step else []
        tracker.slots.update({step: None} if step else {})
        following = await self.next_requested_slot(dispatcher, tracker, domain)  # type: ignore[attr-defined]
        return events + ([following] if following else [])


class ActionDocumentNotNow(Action):
    """A file outside any form (data/rules/conversation.yml)."""

    def name(self) -> Text:
        return "action_document_not_now"

    async def run(self, dispatcher, tracker, domain):
        say_not_now(dispatcher, tracker)
        return []


# -- the documents step --------------------------------------------------------------


def received(tracker: Tracker, service: catalogue.Service) -> List[dict]:
    """The service's documents this conversation has sent for the request under way."""
    return service_request.received_documents(store.open_db(), service, tracker.sender_id)


def next_missing(service: catalogue.Service, rows: Sequence[dict]) -> Optional[catalogue.Document]:
    have = {row["kind"] for row in rows}
    return next((d for d in service.documents if d.id not in have), None)


def fields(cat: catalogue.Catalogue) -> Dict[str, str]:
    """What a document's texts are filled with: the size allowed, the call centre."""
    return {"limit": documents.size_text(documents.max_bytes()), **cat.call_centre_fields()}


def file_words(cat: catalogue.Catalogue, row: dict) -> str:
    return cat.labels.get(f"file_{row['file_type']}", documents.SHORT.get(row["file_type"], ""))


def ask(dispatcher: CollectingDispatcher, cat: catalogue.Catalogue, document: catalogue.Document) -> None:
    """Ask for one document by name, with «ما عندي» and cancel a tap away (`asks`: the widget
    offers its camera and file buttons for it)."""
    dispatcher.utter_message(
        text=document.ask.format(**fields(cat)),
        buttons=[
            {"title": cat.labels["button_no_document"], "payload": cat.labels["button_no_document"]},
            {"title": cat.labels["button_cancel"], "payload": "/deny"},
        ],
        **{ASKS: STEP},
    )


def take(dispatcher: CollectingDispatcher, tracker: Tracker, service: catalogue.Service) -> Optional[str]:
    """The documents step's answer to the latest message; the step's value: "received" once
    every document of the service is in, else None (and the next one asked for, or the
    same one again, with why)."""
    cat = catalogue_for(tracker)
    service = cat.services[service.id]  # its documents' names in the person's language
    rows = received(tracker, service)
    wanted = next_missing(service, rows)
    if wanted is None:
        return "received"
    document_id, refused = sent(tracker)
    text = tracker.latest_message.get("text") or ""
    if refused is not None:
        reason = cat.labels.get(f"document_refused_{refused}", cat.labels["document_refused_unreadable"])
        dispatcher.utter_message(
            text=cat.labels["document_refused"].format(
                reason=reason.format(**fields(cat)), name=wanted.name, **fields(cat)
            ),
            **{ASKS: STEP},
        )
        return None
    if document_id is not None:
        row = store.take_document(store.open_db(), document_id, tracker.sender_id, service.id, wanted.id)
        if row is None:  # not this conversation's, or taken before: as if no file came
            dispatcher.utter_message(text=cat.labels["document_waiting"].format(name=wanted.name), **{ASKS: STEP})
            return None
        dispatcher.utter_message(
            text=cat.labels["document_received"].format(
                name=wanted.name, file=file_words(cat, row), size=documents.size_text(row["size"])
            )
        )
        wanted = next_missing(service, [*rows, row])
        if wanted is None:
            return "received"
        ask(dispatcher, cat, wanted)
        return None
    if cat.says_no_document(text):
        say_missing(dispatcher, cat, wanted)
        return None
    dispatcher.utter_message(text=cat.labels["document_waiting"].format(name=wanted.name), **{ASKS: STEP})
    return None


def say_missing(dispatcher: CollectingDispatcher, cat: catalogue.Catalogue, document: catalogue.Document) -> None:
    """«ما عندي»: where to get it, and the request kept for when they have it."""
    kept = cat.labels["document_kept_open"].format(name=document.name)
    dispatcher.utter_message(text=document.missing.format(**fields(cat)) + "\n" + kept, **{ASKS: STEP})


def no_document_said(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """At the documents step, «ما عندي» read as something else (a no, a question, the service
    itself): said where to get the document, and True; the form then goes on as it was."""
    if not at_documents_step(tracker):
        return False
    cat = catalogue_for(tracker)
    service = cat.service(tracker.get_slot("service"))
    if service is None or not cat.says_no_document(tracker.latest_message.get("text") or ""):
        return False
    wanted = next_missing(service, received(tracker, service))
    if wanted is None:
        return False
    say_missing(dispatcher, cat, wanted)
    return True


def document_summary(tracker: Tracker, cat: catalogue.Catalogue, service: catalogue.Service) -> Optional[str]:
    """The summary's line of documents («• المستندات: صورة الهوية الوطنية (صورة JPEG، 412 KB)، …»)."""
    return documents_line(cat, cat.services[service.id], received(tracker, service))


def documents_line(cat: catalogue.Catalogue, service: catalogue.Service, rows: Sequence[dict]) -> Optional[str]:
    """A request's documents in one line, each by name, type and size (in `cat`'s language); None without any."""
    if not rows:
        return None
    service = cat.services.get(service.id, service)
    lines = [
        cat.labels["document_line"].format(
            name=(service.document(row["kind"]) or service.documents[0]).name if service.documents else row["kind"],
            file=file_words(cat, row),
            size=documents.size_text(row["size"]),
        )
        for row in service.in_document_order(rows)
    ]
    between = "، " if cat.language == "ar" else "; "
    return cat.labels["summary_documents"].format(documents=between.join(lines))


def stop_request(tracker: Tracker) -> List[Dict[Text, Any]]:
    """The request under way stops (cancelled, switched, handed over): its documents go, its slots clear."""
    removed = documents.discard_staged(store.open_db(), tracker.sender_id)
    if removed:
        log.info("request in %s stopped: %d document(s) deleted", tracker.sender_id, removed)
    return clear_form_slots()
