"""Agents' tokens: MUSAED_CARE_TOKENS="name1:token1,name2:token2"; the name signs events and logs."""

from __future__ import annotations

import secrets
from typing import Dict, Optional, Set

from musaed import settings


def parse_tokens(spec: Optional[str]) -> Dict[str, str]:
    """{agent name: token} from "name1:token1,name2:token2" (spaces ignored)."""
    tokens: Dict[str, str] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        name, sep, token = item.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not name or not token:
            raise ValueError(f"{settings.CARE_TOKENS.name}: expected name:token, got an entry without both")
        if token in tokens.values():
            raise ValueError(f"{settings.CARE_TOKENS.name}: two agents share a token")
        tokens[name] = token
    return tokens


def tokens_from_env() -> Dict[str, str]:
    return parse_tokens(settings.CARE_TOKENS.given())


def agent_for(authorization: Optional[str], tokens: Dict[str, str]) -> Optional[str]:
    """The agent whose token is in `Authorization: Bearer <token>`, or None."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return None
    found = None
    for name, token in tokens.items():  # compare with every token, in constant time
        if secrets.compare_digest(token.encode(), given.encode()):
            found = name
    return found


def supervisors_from_env() -> Set[str]:
    """The agents who may read the care audit: MUSAED_CARE_SUPERVISORS="huda,omar" (default: none)."""
    return {name.strip() for name in settings.CARE_SUPERVISORS.get().split(",") if name.strip()}


def agent_for_token(token: Optional[str], tokens: Dict[str, str]) -> Optional[str]:
    """The agent a bare token (the command line's MUSAED_CARE_TOKEN) belongs to, or None."""
    return agent_for(f"Bearer {token}", tokens) if token else None
