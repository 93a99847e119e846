"""The service request flow: verify, choose whom it is for, check, confirm, create."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import documents as document_step
from actions import reminders
from actions.identity import IdentitySlots
from actions.turn import ASKS, asked_this_turn, catalogue_for, clear_yes, latest_intent
from musaed import catalogue, identity, receipt, service_request, settings, store

log = logging.getLogger(__name__)


def requested_service(tracker: Tracker) -> Optional[catalogue.Service]:
    """The service of the request under way (the `service` slot), from the catalogue."""
    return catalogue.load().service(tracker.get_slot("service"))


def answers(tracker: Tracker) -> Dict[str, Any]:
    """The service's own form steps as answered so far (kept with the request)."""
    service = requested_service(tracker)
    return {step: tracker.get_slot(step) for step in (service.form_steps if service else ())}


# One assessment per turn: a form turn asks for the required slots several
# times (rasa-sdk's FormValidationAction.run does so three times), and each
# assessment reads the records. A turn is one action call, which runs in its
# own asyncio task, so a context variable holds it for that call only.
_turn_assessment: ContextVar[Optional[Tuple[tuple, Optional[service_request.Assessment]]]] = ContextVar(
    "turn_assessment", default=None
)


def dependents_for(tracker: Tracker, head_id: Optional[str]) -> List[dict]:
    """The relatives the request under way can be made for."""
    service = requested_service(tracker)
    return service_request.eligible_dependents(store.open_db(), service, head_id) if service and head_id else []


def current_assessment(tracker: Tracker) -> Optional[service_request.Assessment]:
    """The requirement checks for the form's answers so far, once all are given.

    Re-read at each turn: records may change while the person talks.
    """
    service = requested_service(tracker)
    applicant = tracker.get_slot("verified_id")
    if service is None or not applicant:
        return None
    beneficiary = tracker.get_slot("beneficiary")
    # Until validate_beneficiary has read it, the slot holds what was typed («زوجتي»).
    if service.beneficiary == "dependent" and (
        not beneficiary or identity.parse_national_id(str(beneficiary)).national_id != beneficiary
    ):
        return None
    given = answers(tracker)
    if any(value is None for value in given.values()):
        return None
    key = (tracker.sender_id, service.id, applicant, beneficiary, tuple(sorted(given.items())))
    cached = _turn_assessment.get()
    if cached is not None and cached[0] == key:
        return cached[1]
    received = [row["kind"] for row in document_step.received(tracker, service)]
    assessment = service_request.assess(store.open_db(), service, applicant, beneficiary, given, documents=received)
    _turn_assessment.set((key, assessment))
    return assessment


class ValidateServiceRequestForm(document_step.NoDocumentHere, IdentitySlots, FormValidationAction):
    def name(self) -> Text:
        return "validate_service_request_form"

    def takes_documents_now(self, tracker: Tracker) -> bool:
        return document_step.at_documents_step(tracker)

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        service = requested_service(tracker)
        slots = self.identity_slots(tracker)
        if service and service.beneficiary == "dependent":
            slots.append("beneficiary")
        if service:
            slots += service.form_steps
        assessment = current_assessment(tracker) if tracker.get_slot("verified_id") else None
        # Ask for confirmation only when every requirement passes and no request
        # is open; otherwise the form ends and action_submit_request says why.
        if assessment is None or assessment.can_request:
            slots.append("confirm")
        return slots

    async def validate(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        events = await super().validate(dispatcher, tracker, domain)
        # An offer to switch services holds for the reply to it: answering the step declines it.
        if tracker.get_slot("switch_to") and latest_intent(tracker) not in catalogue.load().services:
            events.append(SlotSet("switch_to", None))
        return events

    def after_verification(self, db, national_id: str, tracker: Tracker) -> Dict[Text, Any]:
        # "ابي اجدد اقامة زوجتي": the relative named before verification.
        named = tracker.get_slot("family_member")
        service = requested_service(tracker)
        if not named or service is None or service.beneficiary != "dependent":
            return {}
        deps = service_request.eligible_dependents(db, service, national_id)
        match = service_request.match_dependent(str(named), deps)
        return {"beneficiary": match["national_id"]} if match else {}

    async def extract_beneficiary(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """The relative named before this request ("ابغى اجدد اقامة زوجتي"), on any request of the
        conversation: one made after an earlier one skips verification, and so after_verification."""
        applicant = tracker.get_slot("verified_id")
        if not applicant or tracker.get_slot("beneficiary"):
            return {}
        if tracker.get_slot("requested_slot") != "beneficiary":
            return self.after_verification(store.open_db(), applicant, tracker)
        # At the step itself the slot's mapping takes what is typed, except a service's
        # intent (which gets the offer to switch): a relative read as one («زوجتي») is read here.
        if latest_intent(tracker) not in catalogue.load().services:
            return {}
        deps = dependents_for(tracker, applicant)
        match = service_request.match_dependent(tracker.latest_message.get("text") or "", deps)
        return {"beneficiary": match["national_id"]} if match else {}

    async def extract_record_kind(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """«بدل مفقود» at the record-kind step, read as a service's intent, is still its answer."""
        at_step = tracker.get_slot("requested_slot") == "record_kind"
        if not at_step or latest_intent(tracker) not in catalogue.load().services:
            return {}
        text = tracker.latest_message.get("text") or ""
        return {"record_kind": text} if catalogue_for(tracker).record_kind_in(text) else {}  # validated as typed

    def validate_beneficiary(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        deps = dependents_for(tracker, tracker.get_slot("verified_id"))
        match = service_request.match_dependent(str(value), deps)
        if match is None:
            cat = catalogue_for(tracker)
            dispatcher.utter_message(
                text=cat.labels["not_a_dependent"], buttons=dependent_buttons(cat, deps), **{ASKS: "beneficiary"}
            )
            return {"beneficiary": None}
        return {"beneficiary": match["national_id"]}

    def validate_record_kind(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        cat = catalogue_for(tracker)
        kind = cat.record_kind_in(str(value))
        if kind is None:
            dispatcher.utter_message(
                text=cat.labels["record_kind_unclear"], buttons=record_kind_buttons(cat), **{ASKS: "record_kind"}
            )
        return {"record_kind": kind}

    def validate_documents(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """A file is taken as the document asked for; «ما عندي» or other words are answered."""
        service = requested_service(tracker)
        if service is None or not service.documents:
            return {"documents": "received"}
        return {"documents": document_step.take(dispatcher, tracker, service)}

    def validate_terms_accepted(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return yes_or_ask_again("terms_accepted", dispatcher, tracker, terms_buttons(catalogue_for(tracker)))

    def validate_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        return yes_or_ask_again("confirm", dispatcher, tracker)


def yes_or_ask_again(
    slot: str, dispatcher: CollectingDispatcher, tracker: Tracker, buttons: Optional[List[Dict[str, str]]] = None
) -> Dict[Text, Any]:
    """Only a clear yes fills a confirmation; anything else but "لا" asks again."""
    if clear_yes(tracker):
        return {slot: "yes"}
    cat = catalogue_for(tracker)
    dispatcher.utter_message(
        response="utter_answer_yes_or_cancel", buttons=buttons or yes_cancel_buttons(cat), **{ASKS: slot}
    )
    return {slot: None}


def dependent_buttons(cat: catalogue.Catalogue, deps: List[dict]) -> List[Dict[str, str]]:
    labels = cat.relations
    return [{"title": f"{d['name']} ({labels[d['relation']]['label']})", "payload": d["national_id"]} for d in deps]


def record_kind_buttons(cat: catalogue.Catalogue) -> List[Dict[str, str]]:
    kinds = cat.record_kinds
    return [{"title": k["label"], "payload": k["label"]} for k in kinds.values()]


class ActionAskBeneficiary(Action):
    def name(self) -> Text:
        return "action_ask_beneficiary"

    async def run(self, dispatcher, tracker, domain):
        if asked_this_turn(tracker, "beneficiary"):
            return []
        cat = catalogue_for(tracker)
        deps = dependents_for(tracker, tracker.get_slot("verified_id"))
        if deps:
            dispatcher.utter_message(text=cat.labels["choose_dependent"], buttons=dependent_buttons(cat, deps))
        else:
            dispatcher.utter_message(
                text=cat.labels["no_dependents"], buttons=[{"title": cat.labels["button_cancel"], "payload": "/deny"}]
            )
        return []


class ActionAskRecordKind(Action):
    def name(self) -> Text:
        return "action_ask_record_kind"

    async def run(self, dispatcher, tracker, domain):
        if asked_this_turn(tracker, "record_kind"):
            return []
        cat = catalogue_for(tracker)
        dispatcher.utter_message(text=cat.labels["choose_record_kind"], buttons=record_kind_buttons(cat))
        return []


class ActionAskDocuments(Action):
    """The next document the request needs, by name (actions/documents.py)."""

    def name(self) -> Text:
        return "action_ask_documents"

    async def run(self, dispatcher, tracker, domain):
        cat = catalogue_for(tracker)
        service = cat.service(tracker.get_slot("service"))  # its documents' names in the person's language
        if asked_this_turn(tracker, document_step.STEP) or service is None:
            return []
        wanted = document_step.next_missing(service, document_step.received(tracker, service))
        if wanted is not None:
            document_step.ask(dispatcher, cat, wanted)
        return []


class ActionAskTermsAccepted(Action):
    def name(self) -> Text:
        return "action_ask_terms_accepted"

    async def run(self, dispatcher, tracker, domain):
        if asked_this_turn(tracker, "terms_accepted"):
            return []
        cat = catalogue_for(tracker)
        dispatcher.utter_message(text=cat.labels["terms"], buttons=terms_buttons(cat), **{ASKS: "terms_accepted"})
        return []


def terms_buttons(cat: catalogue.Catalogue) -> List[Dict[str, str]]:
    return [
        {"title": cat.labels["button_accept_terms"], "payload": "/affirm"},
        {"title": cat.labels["button_cancel"], "payload": "/deny"},
    ]


def yes_cancel_buttons(cat: catalogue.Catalogue) -> List[Dict[str, str]]:
    return [
        {"title": cat.labels["button_confirm"], "payload": "/affirm"},
        {"title": cat.labels["button_cancel"], "payload": "/deny"},
    ]


class ActionAskConfirm(Action):
    """The checks that passed, a summary with the fees, and the question."""

    def name(self) -> Text:
        return "action_ask_confirm"

    async def run(self, dispatcher, tracker, domain):
        if asked_this_turn(tracker, "confirm"):
            return []
        cat = catalogue_for(tracker)
        a = current_assessment(tracker)
        if a is None:  # cannot happen in the form's order; say something useful anyway
            dispatcher.utter_message(text=cat.labels["confirm"], buttons=yes_cancel_buttons(cat))
            return []
        documents = document_step.document_summary(tracker, cat, a.service)
        summary = cat.request_summary(a.service.id, a.beneficiary["name"], a.delivery_address)
        text = "\n".join(
            [
                cat.eligibility_report(a.service.id, a.results),
                summary + ("\n" + documents if documents else ""),
                cat.labels["confirm"],
            ]
        )
        dispatcher.utter_message(text=text, buttons=yes_cancel_buttons(cat))
        return []


class ActionSubmitRequest(Action):
    """Create the request when everything passed and the person confirmed."""

    def name(self) -> Text:
        return "action_submit_request"

    async def run(self, dispatcher, tracker, domain):
        cat = catalogue_for(tracker)
        service = requested_service(tracker)
        applicant = tracker.get_slot("verified_id")
        if not applicant or service is None:
            dispatcher.utter_message(response="utter_anything_else")
            return document_step.stop_request(tracker)
        service_id = service.id
        db, beneficiary = store.open_db(), tracker.get_slot("beneficiary")
        if tracker.get_slot("confirm") == "yes":
            result = service_request.submit(
                db,
                service,
                applicant,
                beneficiary,
                conversation_id=tracker.sender_id,
                answers=answers(tracker),
                language=cat.language,
            )
        else:  # the form ended before a yes: say why, create nothing
            received = [row["kind"] for row in document_step.received(tracker, service)]
            assessment = service_request.assess(
                db, service, applicant, beneficiary, answers(tracker), documents=received
            )
            result = service_request.Submission(assessment, assessment.open_request)
        a = result.assessment
        request = result.request
        if request is not None and not result.created:
            if request["conversation_id"] == tracker.sender_id:
                dispatcher.utter_message(
                    text=cat.labels["already_created"].format(tracking_number=request["tracking_number"])
                )
            else:  # made in another conversation or channel
                dispatcher.utter_message(
                    text=cat.labels["open_request_exists"].format(
                        tracking_number=request["tracking_number"], status=cat.status_text(request["status"])
                    )
                )
        elif not a.eligible:
            dispatcher.utter_message(text=cat.eligibility_report(service_id, a.results))
        elif not result.created:
            dispatcher.utter_message(response="utter_request_cancelled")
        else:
            log.info(
                "request %s created: %s for %s",
                result.request["tracking_number"],
                service_id,
                identity.mask_id(a.beneficiary["national_id"]),
            )
            number = result.request["tracking_number"]
            dispatcher.utter_message(
                text=cat.labels["created"].format(tracking_number=number, delivery=cat.services[service_id].delivery)
            )
            # The receipt (PNG with a QR code) from the web server, behind a signed link, at the
            # address people's devices (and Telegram/WhatsApp) reach.
            public_url = settings.PUBLIC_URL.get()
            # Its text too, for the widget's receipt card: selectable, not only in the image.
            shown = {
                "number": number,
                "service": cat.services[service_id].name,
                "date": receipt.display_date(result.request["created_at"]),
            }
            dispatcher.utter_message(
                image=public_url.rstrip("/") + receipt.receipt_path(number, cat.language), receipt=shown
            )
            for label in cat.services[service_id].after_created:  # e.g. the parent reminder
                dispatcher.utter_message(text=cat.labels[label].format(name=a.beneficiary["name"]))
            # Expiry reminders, offered once (actions/reminders.py). Documents a made request
            # took are its own now; those of one not made go (stop_request).
            return document_step.stop_request(tracker) + reminders.offer(dispatcher, tracker, cat)
        return document_step.stop_request(tracker) + [SlotSet(reminders.OFFERED, False)]


# Below this, a "no" in the middle of a form may be "ما عندي فكرة" (I have no
# idea) read as deny: ask again rather than throw the request away.
SURE_DENY = 0.9


class ActionCancelForm(Action):
    """ "لا" or "الغاء" inside a form: stop it and keep nothing half-made."""

    def name(self) -> Text:
        return "action_cancel_form"

    async def run(self, dispatcher, tracker, domain):
        loop = (tracker.active_loop or {}).get("name")
        confidence = (tracker.latest_message.get("intent") or {}).get("confidence", 1.0)
        if loop and document_step.no_document_said(dispatcher, tracker):
            # «ما عندي» read as a no: where to get the document, and the request kept.
            return [FollowupAction(loop)]
        if loop and tracker.get_slot("switch_to"):
            # "لا" to the offer to switch services: keep the current request and ask its step again.
            cat = catalogue_for(tracker)
            current = cat.services[tracker.get_slot("service")].name
            dispatcher.utter_message(text=cat.labels["switch_declined"].format(current=current))
            return [SlotSet("switch_to", None), FollowupAction(loop)]
        if loop and confidence < SURE_DENY:
            # The form runs again: it extracts nothing from a "no" and asks its step again.
            dispatcher.utter_message(text=catalogue_for(tracker).labels["cancel_unsure"])
            return [FollowupAction(loop)]
        dispatcher.utter_message(response="utter_request_cancelled")
        return [ActiveLoop(None), *document_step.stop_request(tracker)]


class ActionOfferSwitch(Action):
    """Another service asked about in the middle of a request: offer to switch.

    The offer's button sends that service's intent again, which switches: the
    form stops (nothing half-made is kept) and the other service is explained,
    with its own offer. Asking about the service already requested is told so,
    and the form asks its step again.
    """

    def name(self) -> Text:
        return "action_offer_switch"

    async def run(self, dispatcher, tracker, domain):
        cat = catalogue_for(tracker)
        other, current = latest_intent(tracker), tracker.get_slot("service")
        if cat.service(other) is None or cat.service(current) is None:
            return []
        if document_step.no_document_said(dispatcher, tracker):  # «ما عندي تقرير السجل», read as the service
            return []
        if other == current:  # already under way: say so; the form asks its step next
            dispatcher.utter_message(text=cat.labels["switch_same"].format(current=cat.services[current].name))
            return []
        if tracker.get_slot("switch_to") == other:  # the offer's button: switch
            # Tracking is a form of its own; any other service starts with its guide and offer.
            then = cat.services[other].flow or "action_explain_service"
            return [ActiveLoop(None), *document_step.stop_request(tracker), FollowupAction(then)]
        text = cat.labels["switch_offer"].format(current=cat.services[current].name, other=cat.services[other].name)
        dispatcher.utter_message(text=text, buttons=[{"title": cat.services[other].name, "payload": f"/{other}"}])
        return [SlotSet("switch_to", other)]
