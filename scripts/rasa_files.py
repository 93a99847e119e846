"""What Rasa must know about the services, made from the catalogue (`make rules`).

    python -m scripts.rasa_files          # write them
    python -m scripts.rasa_files --check  # exit 1 when one differs (tests/test_catalogue.py)

A service is defined once, in musaed/catalogue.yml. From it this writes:

- data/rules/guidance.yml: one guide rule per service (whether its guide ends
  with the offer to make the request: the `requestable` slot), one per follow-up;
- data/rules/switch.yml: another service named in the middle of the request
  form gets the offer to switch;
- in domain.yml, between its "made from the catalogue" marks: the services'
  intents, and the asides' list (the intents no form step takes as its value:
  a service named at the id step is the offer to switch, not an id).

domain.yml stays one hand-written file (the contract names it); only the
marked lines are rewritten.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Dict

import yaml

from musaed import catalogue

ROOT = Path(__file__).resolve().parent.parent

HEADER = "# Made from musaed/catalogue.yml by `make rules` (scripts/rasa_files.py): do not edit.\n"
GUIDANCE = Path("data") / "rules" / "guidance.yml"
SWITCH = Path("data") / "rules" / "switch.yml"
DOMAIN = Path("domain.yml")
# The intents that are asides at every form step, besides the services (domain.yml).
ASIDES = [
    "deny",
    "ask_fees",
    "ask_requirements",
    "ask_delivery",
    "request_human",
    "greet",
    "thank",
    "bot_challenge",
    "stop_reminders",
]
BEGIN, END = "# made from the catalogue by `make rules`: begin", "# made from the catalogue by `make rules`: end"


def _rules(rules: list) -> str:
    return HEADER + yaml.safe_dump({"version": "3.1", "rules": rules}, allow_unicode=True, sort_keys=False)


def guidance(cat: catalogue.Catalogue) -> str:
    rules = [
        {
            "rule": f"guide: {s.id}",
            "steps": [
                {"intent": s.id},
                {"action": "action_explain_service"},
                {"slot_was_set": [{"requestable": s.requestable}]},
            ],
        }
        for s in cat.services.values()
        if s.flow is None
    ]
    rules += [
        {
            "rule": f"follow-up: {question} of the service in context",
            "steps": [{"intent": f"ask_{question}"}, {"action": "action_answer_followup"}],
        }
        for question in catalogue.FOLLOWUPS
    ]
    return _rules(rules)


def switch(cat: catalogue.Catalogue) -> str:
    # Tapping the offer's button switches: actions/requests.py, ActionOfferSwitch.
    rule = {
        "rule": "another service in the middle of the request form",
        "condition": [{"active_loop": "service_request_form"}],
        "steps": [
            {"or": [{"intent": sid} for sid in cat.services]},
            {"action": "action_offer_switch"},
            {"action": "service_request_form"},
            {"active_loop": "service_request_form"},
        ],
    }
    return _rules([rule])


def domain(cat: catalogue.Catalogue, text: str) -> str:
    """domain.yml with its marked blocks made from the catalogue."""
    services = list(cat.services)
    blocks = {
        "intents": "".join(f"  - {sid}\n" for sid in services),
        "asides": _flow_list("        not_intent: &asides_and_services", ASIDES + services),
    }
    for name, body in blocks.items():
        pattern = re.compile(rf"(?ms)^([ \t]*){re.escape(BEGIN)} \({name}\)\n.*?^[ \t]*{re.escape(END)}\n")
        if pattern.search(text) is None:
            raise SystemExit(f"domain.yml has no '{BEGIN} ({name})' … '{END}' block")
        match = pattern.search(text)
        indent = match.group(1)
        text = text[: match.start()] + f"{indent}{BEGIN} ({name})\n{body}{indent}{END}\n" + text[match.end() :]
    return text


def _flow_list(head: str, items: list, width: int = 120) -> str:
    """`head` followed by a YAML flow list, wrapped at `width`."""
    lines, line = [head], " " * 10 + "["
    for i, item in enumerate(items):
        word = item + ("]" if i == len(items) - 1 else ", ")
        if len(line) + len(word.rstrip()) > width:
            lines.append(line.rstrip())
            line = " " * 11
        line += word
    return "\n".join(lines + [line]) + "\n"


def made(root: Path = ROOT) -> Dict[Path, str]:
    """Each file this writes, with what it should hold."""
    cat = catalogue.load(path=root / "musaed" / "catalogue.yml")
    return {
        root / GUIDANCE: guidance(cat),
        root / SWITCH: switch(cat),
        root / DOMAIN: domain(cat, (root / DOMAIN).read_text(encoding="utf-8")),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when one differs")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project (a copy, in tests)")
    args = parser.parse_args(argv)
    stale = [p for p, text in made(args.root).items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"{p} is not what the catalogue makes: run `make rules`", file=sys.stderr)
        return 1 if stale else 0
    for p, text in made(args.root).items():
        p.write_text(text, encoding="utf-8")
    print("wrote " + ", ".join(str(p.relative_to(args.root)) for p in made(args.root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
