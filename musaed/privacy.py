"""What the tracker store keeps of a conversation: no typed codes, no readable ids or phone numbers.

Rasa stores every event of a conversation as JSON (stores/tracker_store.py)
and reads the conversation back from it on the person's next message. So:

- Text people typed and the bot's replies (and their buttons, and the
  entities found in a message) are stored *masked*, irreversibly: a run of
  6 digits is ``******``, a run of 9 or more (a national id, a phone number,
  typed with spaces or dashes or in Arabic-Indic digits) keeps its first digit
  and last three. A message typed at the code step that has a digit is not
  kept at all (``CODE_TEXT``). Within a turn the actions still get the
  message as typed: Rasa sends them its copy in memory; nothing reads past
  messages' text back.
- Slots that hold an id across turns (`national_id` until the code is typed,
  `verified_id` for the session, `beneficiary` until the request is made) are
  stored *encrypted* (Fernet: AES-128-CBC with HMAC-SHA256) and decrypted when
  Rasa reads the conversation back, so the flows work as before. The key is
  ``MUSAED_TRACKER_KEY`` or a random one kept in ``tracker.key`` (0600)
  beside the application database (musaed/keys.py). A value that no longer
  decrypts (the key was changed) reads as empty: the person verifies again.
- `verified_id` is also stored with a keyed hash of the id (`person`): the
  conversations that verified as someone can be found, for their erasure,
  without decrypting anything. (Retention tells verified conversations from
  others by the slot having a value: it needs no key.)
- The `otp` slot keeps only ``verified``: a code typed there is masked.

Plain functions over events' JSON (dicts): no Rasa imports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from functools import lru_cache
from typing import Any, Dict, List, Optional

from musaed import settings
from musaed.arabic import to_ascii_digits

KEY_FILE = "tracker.key"
# Slots whose value is an id the next turns need: encrypted at rest.
ENCRYPTED_SLOTS = frozenset({"national_id", "verified_id", "beneficiary"})
# What is stored instead of a message typed at the code step.
CODE_TEXT = "******"
ENCRYPTED_PREFIX = "enc:"
# The key in a stored `verified_id` event's JSON holding the person's keyed hash.
PERSON = "person"

_DIGIT = "0-9\u0660-\u0669\u06f0-\u06f9"
# Digits with at most one space or dash between them: «1010 000 014», «659-185».
_DIGIT_RUN = re.compile(rf"(?<![{_DIGIT}])[{_DIGIT}](?:[ \-]?[{_DIGIT}])*(?![{_DIGIT}])")


def mask_text(text: Optional[str]) -> Optional[str]:
    """`text` with codes (6 digits) and ids or phone numbers (9 digits or more) masked.

    Tracking numbers (8 digits) and other short numbers stay: tracking reads them."""
    if not isinstance(text, str):
        return text

    def hide(match: re.Match) -> str:
        digits = re.sub(r"[ \-]", "", to_ascii_digits(match.group()))
        if len(digits) == 6:
            return "******"
        if len(digits) >= 9:
            return digits[0] + "*" * (len(digits) - 4) + digits[-3:]
        return match.group()

    return _DIGIT_RUN.sub(hide, text)


def _mask_any(value: Any) -> Any:
    """Every string inside a JSON value masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [_mask_any(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_any(v) for k, v in value.items()}
    return value


# -- the key -------------------------------------------------------------------


@lru_cache(maxsize=4)
def _keys(secret: bytes) -> tuple:
    from cryptography.fernet import Fernet

    # Two keys from one secret: one encrypts, one hashes people's ids.
    fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"musaed tracker store: encrypt\0" + secret).digest()))
    tag_key = hashlib.sha256(b"musaed tracker store: person\0" + secret).digest()
    return fernet, tag_key


def keys() -> tuple:
    """(Fernet, person-hash key) from MUSAED_TRACKER_KEY, else tracker.key beside the database."""
    from musaed import store

    return _keys_for(settings.TRACKER_KEY.given() or "", str(store.db_path()))


@lru_cache(maxsize=4)
def _keys_for(_env: str, _db: str) -> tuple:
    """Read (or made) once per setting and database: the tracker store asks at every message."""
    from musaed.keys import shared_secret

    return _keys(shared_secret(settings.TRACKER_KEY, KEY_FILE))


def person_tag(national_id: str, tag_key: Optional[bytes] = None) -> str:
    """A keyed hash of a national id: the same id gives the same tag, and the tag does not give the id."""
    key = tag_key if tag_key is not None else keys()[1]
    return hmac.new(key, str(national_id).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def encrypt_value(value: Any, fernet=None) -> str:
    fernet = fernet or keys()[0]
    return ENCRYPTED_PREFIX + fernet.encrypt(json.dumps(value).encode("utf-8")).decode("ascii")


def decrypt_value(value: Any, fernet=None) -> Any:
    """A stored slot value as it was set (None when it no longer decrypts)."""
    if not (isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX)):
        return value
    from cryptography.fernet import InvalidToken

    fernet = fernet or keys()[0]
    try:
        return json.loads(fernet.decrypt(value[len(ENCRYPTED_PREFIX) :].encode("ascii")))
    except (InvalidToken, ValueError):
        return None


# -- events as stored --------------------------------------------------------------


def protect_event(data: Dict[str, Any], *, code_step: bool = False, key: Optional[tuple] = None) -> Dict[str, Any]:
    """An event's JSON (Rasa's `as_dict`) as the tracker store keeps it.

    `code_step`: a user message typed when the code was asked for.
    Returns a new dict; `data` is left as it is (Rasa's copy in memory)."""
    kind = data.get("event")
    if isinstance(data.get("metadata"), dict):  # a channel's metadata may ride on any event
        data = {**data, "metadata": _scrub_metadata(data["metadata"])}
    if kind == "user":
        return _protect_user(data, code_step)
    if kind == "bot":
        return {**data, "text": mask_text(data.get("text")), "data": _mask_any(data.get("data"))}
    if kind == "slot":
        return _protect_slot(data, key or keys())
    return data


def _scrub_metadata(metadata: Dict[str, Any]) -> Dict[str, Any]:
    """A channel's metadata without the name a person gave WhatsApp, its numbers masked."""
    whatsapp = metadata.get("whatsapp")
    if isinstance(whatsapp, dict) and whatsapp.get("profile_name"):
        # Nothing needs it after the turn (the reply goes to the conversation's number).
        metadata = {**metadata, "whatsapp": {**whatsapp, "profile_name": None}}
    return _mask_any(metadata)


_ANY_DIGIT = re.compile(f"[{_DIGIT}]")


def _protect_user(data: Dict[str, Any], code_step: bool) -> Dict[str, Any]:
    def text(value):
        # At the code step any digits may be the code, however typed: the message goes whole.
        return CODE_TEXT if code_step and value and _ANY_DIGIT.search(str(value)) else mask_text(value)

    stored = {**data, "text": text(data.get("text"))}
    parse = data.get("parse_data")
    if isinstance(parse, dict):
        stored["parse_data"] = {
            **parse,
            "text": text(parse.get("text")),
            "entities": [
                {**e, "value": text(e.get("value")) if isinstance(e.get("value"), str) else e.get("value")}
                for e in parse.get("entities") or []
            ],
        }
    return stored


def _protect_slot(data: Dict[str, Any], key: tuple) -> Dict[str, Any]:
    name, value = data.get("name"), data.get("value")
    if value is None:
        return data
    if name in ENCRYPTED_SLOTS:
        if isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX):
            return data  # stored already (protect_stored runs over every row)
        stored = {**data, "value": encrypt_value(value, key[0])}
        if name == "verified_id":
            stored[PERSON] = person_tag(str(value), key[1])
        return stored
    if name == "otp":
        return data if value == "verified" else {**data, "value": CODE_TEXT}
    if name == "session_started_metadata" and isinstance(value, dict):  # Rasa keeps the channel's metadata here
        return {**data, "value": _scrub_metadata(value)}
    return {**data, "value": _mask_any(value)}


def restore_event(data: Dict[str, Any], key: Optional[tuple] = None) -> Dict[str, Any]:
    """A stored event's JSON as Rasa needs it back: encrypted slot values decrypted."""
    if data.get("event") != "slot" or not str(data.get("value") or "").startswith(ENCRYPTED_PREFIX):
        return data
    restored = {**data, "value": decrypt_value(data["value"], (key or keys())[0])}
    restored.pop(PERSON, None)
    return restored


def protect_stored(events: List[Dict[str, Any]], key: Optional[tuple] = None) -> List[Dict[str, Any]]:
    """One conversation's events as an earlier version stored them (in order), as this one would:
    for a deployment's rows written before (`python -m musaed.retention --protect-existing`).
    Already protected events come back unchanged."""
    key = key or keys()
    asked: Optional[str] = None
    protected = []
    for data in events:
        protected.append(protect_event(data, code_step=asked == "otp" and data.get("event") == "user", key=key))
        if data.get("event") == "slot" and data.get("name") == "requested_slot":
            asked = data.get("value")
        elif data.get("event") in ("restart", "session_started") or (
            data.get("event") == "active_loop" and not data.get("name")
        ):
            asked = None
    return protected


def person_pattern(national_id: str) -> str:
    """A LIKE pattern finding the stored `verified_id` events of this person."""
    return f'%"{PERSON}": "{person_tag(national_id)}"%'


# Stored `verified_id` events of any verified person (retention: verified conversations).
VERIFIED_PATTERN = f'%"{PERSON}": "%'
