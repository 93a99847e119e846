"""When agents answer live chats: one setting, MUSAED_OFFICE_HOURS, in Asia/Riyadh time.

    always
    sun-thu 08:00-20:00                         (the default)
    sun-thu 08:00-20:00; sat 10:00-14:00; holidays 2026-12-24,2027-03-30

Days are the first three letters of English day names, a range (`sun-thu`) or
a list (`sun,tue`); a holiday is an ISO date on which nobody answers.
Plain Python: the action server asks it when a person asks for a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Dict, FrozenSet, List, Optional, Tuple
from zoneinfo import ZoneInfo

from musaed import settings

RIYADH = ZoneInfo("Asia/Riyadh")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_SPAN = re.compile(r"^([a-z]{3}(?:\s*[-,]\s*[a-z]{3})*)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class OfficeHours:
    always: bool = False
    # weekday (0 = Monday) -> (opens, closes) that day
    hours: Dict[int, Tuple[time, time]] = field(default_factory=dict)
    holidays: FrozenSet[date] = frozenset()

    def is_open(self, now: Optional[datetime] = None) -> bool:
        if self.always:
            return True
        local = (now or datetime.now(timezone.utc)).astimezone(RIYADH)
        span = self.hours.get(local.weekday())
        if span is None or local.date() in self.holidays:
            return False
        return span[0] <= local.time() < span[1]

    def next_opening(self, now: Optional[datetime] = None) -> Optional[datetime]:
        """When agents are next on duty (Asia/Riyadh), or None: open now, or never."""
        local = (now or datetime.now(timezone.utc)).astimezone(RIYADH)
        if self.is_open(local):
            return None
        for ahead in range(0, 400):  # a year of holidays at most
            day = local.date() + timedelta(days=ahead)
            span = self.hours.get(day.weekday())
            if span is None or day in self.holidays:
                continue
            opening = datetime.combine(day, span[0], tzinfo=RIYADH)
            if opening > local:
                return opening
        return None


def _days(spec: str) -> List[int]:
    found: List[int] = []
    for part in spec.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"unknown day in {spec!r} (use {', '.join(DAYS)})")
        start, end = DAYS.index(first), DAYS.index(last or first)
        found += [(start + i) % 7 for i in range((end - start) % 7 + 1)]
    return found


def parse(spec: Optional[str]) -> OfficeHours:
    """The setting's text as OfficeHours; ValueError with what is wrong."""
    text = (spec or settings.OFFICE_HOURS.default).strip().lower()
    if text == "always":
        return OfficeHours(always=True)
    hours: Dict[int, Tuple[time, time]] = {}
    holidays: List[date] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if part.startswith("holidays"):
            holidays += [date.fromisoformat(d.strip()) for d in part[len("holidays") :].split(",") if d.strip()]
            continue
        match = _SPAN.match(part)
        if not match:
            raise ValueError(f"{settings.OFFICE_HOURS.name}: expected e.g. 'sun-thu 08:00-20:00', got {part!r}")
        days, open_h, open_m, close_h, close_m = match.groups()
        opens = time(int(open_h), int(open_m))
        closes = time(23, 59, 59) if (close_h, close_m) == ("24", "00") else time(int(close_h), int(close_m))
        if closes <= opens:
            raise ValueError(f"{settings.OFFICE_HOURS.name}: {part!r} closes before it opens")
        for day in _days(days):
            hours[day] = (opens, closes)
    return OfficeHours(hours=hours, holidays=frozenset(holidays))


def from_env() -> OfficeHours:
    return parse(settings.OFFICE_HOURS.get())
