"""Print the newest one-time code in the development outbox (what the SMS would say).

make code ID=1010000014
"""

import sys

from musaed import store


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m scripts.last_code NATIONAL_ID", file=sys.stderr)
        return 2
    row = store.latest_code(store.open_db(), sys.argv[1])
    if row is None:
        print("no code sent to this id yet", file=sys.stderr)
        return 1
    print(f"{row['code']}  (expires {row['expires_at']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
