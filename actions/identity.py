"""Identity slots shared by every form that touches personal records."""
from __future__ import annotations

import logging
from typing import Any, Dict, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from musaed import identity, store

log = logging.getLogger(__name__)


def latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


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
        parsed = identity.parse_national_id(str(value))
        if parsed.error:
            dispatcher.utter_message(response=f"utter_national_id_{parsed.error}")
            return {"national_id": None}
        db = store.open_db()
        outcome = identity.send_code(db, parsed.national_id)
        if outcome.status == "unknown":
            dispatcher.utter_message(response="utter_national_id_unknown")
            return {"national_id": None}
        if outcome.status == "locked":
            dispatcher.utter_message(response="utter_identity_locked", minutes=outcome.minutes_left)
            return {"national_id": None}
        mobile = store.get_person(db, parsed.national_id)["mobile"] or ""
        dispatcher.utter_message(response="utter_code_sent", mobile_end=mobile[-2:])
        return {"national_id": parsed.national_id}

    def validate_otp(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict
    ) -> Dict[Text, Any]:
        nid = tracker.get_slot("national_id")
        code = identity.parse_code(str(value))
        if not code:
            dispatcher.utter_message(response="utter_otp_format")
            return {"otp": None}
        db = store.open_db()
        outcome = identity.verify_code(db, nid, code)
        if outcome.status == "ok":
            # The code itself is never kept in the tracker.
            return {"otp": "verified", "verified_id": nid, **self.after_verification(db, nid, tracker)}
        if outcome.status == "wrong":
            dispatcher.utter_message(response="utter_otp_wrong", attempts=outcome.attempts_left)
            return {"otp": None}
        if outcome.status == "locked":
            dispatcher.utter_message(response="utter_identity_locked", minutes=outcome.minutes_left)
            return {"otp": None, "national_id": None}
        # expired, or no code pending: send a fresh one.
        identity.send_code(db, nid)
        dispatcher.utter_message(response="utter_otp_expired")
        return {"otp": None}

    def after_verification(self, db, national_id: str, tracker: Tracker) -> Dict[Text, Any]:
        """Slots a form can fill as soon as the person is known (override)."""
        return {}
