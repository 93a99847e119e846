"""No message goes unanswered: if handling one sent no reply, say the service is briefly unavailable.

When an action fails (the action server down, an action raising, the
database locked past its timeout), Rasa logs the error, drops that action's
events and waits for the next message: the person hears nothing and cannot
tell whether to wait or retry.  Every channel's handler is wrapped here: a
message whose handling sent nothing, or raised, gets one short reply in the
person's language, and the conversation stays where it was (the failed
action's events were never applied, so a form goes on when the service is
back).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage

from musaed import catalogue, language

logger = logging.getLogger(__name__)


class _Watched(OutputChannel):
    """The message's own output channel, counting what is sent through it."""

    def __init__(self, inner: OutputChannel) -> None:
        self.inner = inner
        self.sent = 0

    def name(self) -> Text:  # type: ignore[override]  # the wrapped channel's, for its responses
        return self.inner.name()

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        self.sent += 1
        await self.inner.send_response(recipient_id, message)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


def unavailable_text(text: Optional[str]) -> str:
    """The reply for a message that could not be answered, in the language it was written in."""
    return catalogue.load(language.detect(text or "") or language.ARABIC).labels["unavailable"]


def never_silent(on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Callable[[UserMessage], Awaitable[Any]]:
    async def handle(message: UserMessage) -> Any:
        watched = _Watched(message.output_channel)
        message.output_channel = watched
        result, error = None, None
        try:
            result = await on_new_message(message)
        except Exception as e:  # noqa: BLE001 - the person must hear something; logged below
            error = e
        if watched.sent == 0:
            if error is not None:
                logger.error("No reply to a message in %s: %r", message.sender_id, error)
            else:  # Rasa has logged the failed action with its cause
                logger.warning(
                    "No reply to a message in %s: said the service is briefly unavailable", message.sender_id
                )
            try:
                await watched.inner.send_response(message.sender_id, {"text": unavailable_text(message.text)})
            except Exception:  # noqa: BLE001 - the channel itself is down: nothing more to do here
                logger.exception("Could not tell %s the service is unavailable", message.sender_id)
        elif error is not None:
            logger.error("A message in %s failed after a reply: %r", message.sender_id, error)
        return result

    return handle
