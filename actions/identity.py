"""Identity slots shared by every form that touches personal records."""

from __future__ import annotations

import logging
from typing import Any, Dict, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.turn import (
    ASKS,
    asked_this_turn,
    catalogue_for,
    language_of,
    latest_intent,
    read_unsure,
    service_in_context,
)
from musaed import answers, handover, identity, store

log = logging.getLogger(__name__)


# What to say for each way a typed national id can be wrong (identity.ParsedId.error).
NATIONAL_ID_ERRORS = {
    "missing": "utter_national_id_missing",
    "length": "utter_national_id_length",
    "prefix": "utter_national_id_prefix",
    "check_digit": "utter_national_id_check_digit",
}


def caller_of(tracker: Tracker) -> identity.Caller:
    """Who is asking: this conversation, and the address its channel saw (set by the
    channel itself, never taken from what the client sends: channels/limits.py)."""
    metadata = tracker.latest_message.get("metadata") or {}
    address = metadata.get("musaed_address")
    return identity.Caller(tracker.sender_id, address if isinstance(address, str) and address else None)


class IdentitySlots:
    """validate_national_id and validate_otp, mixed into FormValidationActions.

    `verified_id` is set here and nowhere else; its slot mapping is custom,
    so no message ("/inform{...}" included) can set it directly.
    """

    def identity_slots(self, tracker: Tracker) -> list:
        return [] if tracker.get_slot("verified_id") else ["national_id", "otp"]

    def validate_national_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict
    ) -> Dict[Text, Any]:
        if answered_at_step(dispatcher, tracker):  # the form asks for the id again
            return {"national_id": None}
        parsed = identity.parse_national_id(str(value))
        if parsed.error:
            dispatcher.utter_message(response=NATIONAL_ID_ERRORS[parsed.error], **{ASKS: "national_id"})
            return {"national_id": None}
        outcome = identity.send_code(
            store.open_db(), parsed.national_id, caller_of(tracker), language=language_of(tracker)
        )
        if not say_code_outcome(dispatcher, outcome):
            return {"national_id": None}
        return {"national_id": parsed.national_id}

    def validate_otp(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict
    ) -> Dict[Text, Any]:
        nid = tracker.get_slot("national_id")
        if answered_at_step(dispatcher, tracker):
            return {"otp": None}
        code = identity.parse_code(str(value))
        if not code:
            dispatcher.utter_message(response="utter_otp_format", **{ASKS: "otp"})
            return {"otp": None}
        db = store.open_db()
        outcome = identity.verify_code(db, nid, code, caller_of(tracker))
        if outcome.status == "ok":
            handover.person_verified(db, tracker.sender_id, nid)  # an agent waiting on them may see who it is
            # The code itself is never kept in the tracker.
            return {"otp": "verified", "verified_id": nid, **self.after_verification(db, nid, tracker)}
        if outcome.status == "wrong":
            dispatcher.utter_message(response="utter_otp_wrong", attempts=outcome.attempts_left)
            return {"otp": None}
        if outcome.status == "locked":
            say_code_outcome(dispatcher, outcome)
            return {"otp": None, "national_id": None}
        # expired, or no code pending: send a fresh one, within the limit.
        resent = identity.send_code(db, nid, caller_of(tracker), language=language_of(tracker))
        if resent.status == "sent":
            dispatcher.utter_message(response="utter_otp_expired", **{ASKS: "otp"})
            return {"otp": None}
        say_code_outcome(dispatcher, resent)
        return {"otp": None, "national_id": None}

    def after_verification(self, db, national_id: str, tracker: Tracker) -> Dict[Text, Any]:
        """Slots a form can fill as soon as the person is known (override)."""
        return {}


def answered_at_step(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """A question asked at an identity step («متى توصل البطاقة؟» when the id is asked for) that a
    fact of the sources answers: answered, and the step asked again. Anything else is the step's."""
    text = tracker.latest_message.get("text") or ""
    if any(ch.isdigit() for ch in text) or not answers.is_question(text) or answered_this_turn(tracker):
        return False
    cat = catalogue_for(tracker)
    service_id = service_in_context(tracker)
    if cat.service(service_id) is None:
        return False
    answer = answers.decide(cat, text, service_id, tracker.latest_message.get("facts") or [])
    # A question the sources do not answer is declined only when it was read as one about
    # our services (not «وش تقدر تسوي؟», which the step itself answers with its hint).
    declined = answer.kind == "unknown" and latest_intent(tracker) in QUESTION_INTENTS
    if answer.kind != "fact" and not declined:
        return False
    dispatcher.utter_message(text=answers.reply_text(cat, service_id, answer))
    return True


# Intents a question about a service is read as when no fact answers it.
QUESTION_INTENTS = {"ask_fees", "ask_requirements", "ask_delivery", "nlu_fallback"}


def answered_this_turn(tracker: Tracker) -> bool:
    """Whether something already replied to the person's latest message (an aside, or this answer)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "bot":
            return True
    return False


def say_code_outcome(dispatcher: CollectingDispatcher, outcome: identity.Outcome) -> bool:
    """Tell the person what became of their code request; True when one was sent."""
    if outcome.status == "sent":  # it asks for the code: the form need not
        dispatcher.utter_message(response="utter_code_sent", minutes=identity.CODE_TTL_MINUTES, **{ASKS: "otp"})
        return True
    # Either says what to do instead of typing an id now.
    if outcome.status == "limited":
        dispatcher.utter_message(response="utter_code_limit", minutes=outcome.minutes_left, **{ASKS: "national_id"})
    else:  # locked
        dispatcher.utter_message(
            response="utter_identity_locked",
            attempts=identity.MAX_WRONG_CODES,
            minutes=outcome.minutes_left,
            **{ASKS: "national_id"},
        )
    return False


class ActionAskNationalId(Action):
    """The form's question for the national id, unless this turn's reply already asked it."""

    def name(self) -> Text:
        return "action_ask_national_id"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> list:
        if not asked_this_turn(tracker, "national_id"):
            answer_tracking_question(dispatcher, tracker)
            dispatcher.utter_message(response="utter_ask_national_id", **{ASKS: "national_id"})
        return []


def answer_tracking_question(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """A question that started the tracking form and that a fact clearly answers: the fact
    first, then the id step, which shows the request.

    - A yes/no question about tracking («أقدر أتابع طلبي بعد ما أقدمه؟», "will I get notified?").
    - "How do I track it in Absher?", «وين أشوف طلبي في أبشر؟»: Absher's own tracking, which
      the sources describe.
    - A question read as tracking without certainty, about the service in context ("after I
      confirm, how will I know it's approved?" after the iqama's guide): that service's fact.

    Not «وين وصل طلبي؟», which asks for the request itself, nor «كيف أتابع طلبي؟» without Absher,
    which the id step answers best (measured: such "how" questions got a fact that did not
    answer them). And no yes or no before a tracking fact: "did my request get approved?" is
    about the person's own request."""
    text = tracker.latest_message.get("text") or ""
    if latest_intent(tracker) != "track_request" or answered_this_turn(tracker):
        return
    if any(ch.isdigit() for ch in text):  # a number in it: the request itself, not a question about tracking
        return
    cat = catalogue_for(tracker)
    facts = tracker.latest_message.get("facts") or []
    about = tracker.get_slot("service")
    if read_unsure(tracker) and answers.is_question(text) and about not in (None, "track_request"):
        if cat.service(about) is not None:
            answer = answers.decide(cat, text, about, facts)
            if answer.kind == "fact":
                dispatcher.utter_message(text=answers.fact_text(cat, answer))
        return
    if answers.is_yes_no_question(text) or (answers.is_question(text) and answers.names_absher(text)):
        answer = answers.clear_fact(cat, text, "track_request", facts)
        if answer is not None and answer.fact is not None:
            dispatcher.utter_message(text=answers.fact_text(cat, answer))


class ActionAskOtp(Action):
    """The form's question for the code, unless this turn's reply already asked it ("أرسلت رمز تحقق…")."""

    def name(self) -> Text:
        return "action_ask_otp"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict) -> list:
        if not asked_this_turn(tracker, "otp"):
            dispatcher.utter_message(response="utter_ask_otp", **{ASKS: "otp"})
        return []
