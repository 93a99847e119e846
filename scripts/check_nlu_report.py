"""Fail `make test` when intent accuracy on the held-out split drops below the bar.

`rasa test nlu` reports but never fails; this reads its intent_report.json.
"""

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("report")
    parser.add_argument("--min-accuracy", type=float, required=True)
    args = parser.parse_args()
    with open(args.report, encoding="utf-8") as f:
        report = json.load(f)
    accuracy = report["accuracy"]
    weak = {
        name: round(scores["f1-score"], 3)
        for name, scores in report.items()
        if isinstance(scores, dict)
        and "f1-score" in scores
        and scores["f1-score"] < 0.9
        and name not in ("macro avg", "weighted avg", "micro avg")
    }
    print(f"intent accuracy {accuracy:.4f} (bar {args.min_accuracy}); macro F1 {report['macro avg']['f1-score']:.4f}")
    if weak:
        print("intents with F1 below 0.9:", weak)
    if accuracy < args.min_accuracy:
        print("FAIL: intent accuracy below the bar", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
