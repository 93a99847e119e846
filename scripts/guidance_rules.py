"""data/rules/guidance.yml from the catalogue: one guide rule per service, one per follow-up.

    python -m scripts.guidance_rules          # write it (make rules)
    python -m scripts.guidance_rules --check  # exit 1 when the file differs

A service's rule says whether its guide ends with the offer to make the
request (the `requestable` slot), so the flag is written once, in the
catalogue; tests/test_catalogue.py fails when the file is not what this makes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from musaed import catalogue

ROOT = Path(__file__).resolve().parent.parent

PATH = ROOT / "data" / "rules" / "guidance.yml"
HEADER = "# Made from musaed/catalogue.yml by `make rules` (scripts/guidance_rules.py): do not edit.\n"


def render(cat: catalogue.Catalogue) -> str:
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
    body = yaml.safe_dump({"version": "3.1", "rules": rules}, allow_unicode=True, sort_keys=False)
    return HEADER + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when it differs")
    args = parser.parse_args()
    text = render(catalogue.load())
    if args.check:
        same = PATH.exists() and PATH.read_text(encoding="utf-8") == text
        if not same:
            print(f"{PATH} is not what the catalogue makes: run `make rules`", file=sys.stderr)
        return 0 if same else 1
    PATH.write_text(text, encoding="utf-8")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
