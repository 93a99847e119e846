"""Rasa's REST channel for trusted callers: tests, `make chat`, curl, back offices.

What differs from ``rasa.core.channels.rest.RestInput``:

- The conversation is ``rest:<sender>`` (channels/ids.py), so a REST caller
  never reaches a WhatsApp, Telegram or web conversation, whatever sender it
  names; ``input_channel`` is always ``rest``, never what the caller claims.
- With ``MUSAED_REST_TOKEN`` set, every call must carry
  ``Authorization: Bearer <token>`` (compared in constant time) or gets 401
  and reaches no conversation. Without it REST is open, which is only safe on
  loopback: `make run` refuses a wider interface then (scripts/run.py).
- With a token, REST is public: the caller's address goes in the metadata as
  ``musaed_address`` (the peer's, or X-Real-IP when the peer is the cluster's
  nginx on loopback), and the limits on size and rate apply
  (channels/limits.py). Without one, only the size cap does: the callers are
  local and trusted (tests, `make chat`, `make bench`), and no address is set.
- A document (issue 31): ``POST /webhooks/rest/document?sender=<sender>`` with
  the file's bytes as the body, behind the same token; the answer is the bot's
  replies, as for a message (channels/documents.py checks and keeps the file).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import documents as channel_documents
from channels import limits
from channels.handover_gate import gate
from channels.ids import conversation_id
from channels.never_silent import never_silent
from musaed import documents, settings

logger = logging.getLogger(__name__)

DEFAULT_SENDER = "default"  # Rasa's own name for a message without a sender


def bearer_ok(token: Optional[str], header: Optional[str]) -> bool:
    """Whether an Authorization header carries `token` (no token configured: always)."""
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class RestInput(RasaRestInput):
    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(token=settings.REST_TOKEN.given())

    def __init__(self, token: Optional[str] = None) -> None:
        self.token = token

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        sender = req.json.get("sender")
        return conversation_id(self.name(), sender if sender not in (None, "") else DEFAULT_SENDER)

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        # The address is the server's to say, never the caller's; none on open (loopback) REST.
        address = limits.client_address(request.ip, request.headers) if self.token else None
        return limits.with_address(request.json.get("metadata"), address)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        # While an agent holds the conversation the bot is silent; the agent's messages come with the
        # caller's next request (channels/handover_gate.py).
        guarded = limits.guard(gate(never_silent(on_new_message)), rate_limited=bool(self.token))
        bp = super().blueprint(guarded)

        @bp.middleware("request")
        async def authorize(request: Request) -> Optional[HTTPResponse]:
            if not bearer_ok(self.token, request.headers.get("Authorization")):
                logger.warning("REST call without the right token refused")
                return response.json({"error": "unauthorized"}, status=401)
            if request.method == "POST" and request.path.endswith("/document"):
                return None  # a file's bytes, not JSON
            if request.method == "POST" and not isinstance(request.json, dict):
                return response.json({"error": "expected a JSON object"}, status=400)
            return None

        @bp.route("/document", methods=["POST"])
        async def document(request: Request) -> HTTPResponse:
            sender = request.args.get("sender") or DEFAULT_SENDER
            conversation = conversation_id(self.name(), sender)
            address = limits.client_address(request.ip, request.headers) if self.token else None
            if self.token and not channel_documents.has_room(conversation, address):
                text, metadata = channel_documents.refused(documents.UNREADABLE)  # the guard says slow down
            else:
                text, metadata = await channel_documents.from_bytes(request.body or b"", conversation)
            collector = CollectingOutputChannel()
            await guarded(
                UserMessage(
                    text,
                    collector,
                    conversation,
                    input_channel=self.name(),
                    metadata=limits.with_address(metadata, address),
                )
            )
            return response.json(collector.messages)

        return bp
