"""Print the newest one-time code in the development outbox (what the SMS would say).

    make code ID=1010000014
"""
import sys

from musaed import store


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: last_code.py NATIONAL_ID", file=sys.stderr)
        return 2
    rows = list(store.open_db().query(
        "SELECT code, expires_at FROM otp_outbox WHERE national_id = ? ORDER BY id DESC LIMIT 1",
        [sys.argv[1]]))
    if not rows:
        print("no code sent to this id yet", file=sys.stderr)
        return 1
    print(f"{rows[0]['code']}  (expires {rows[0]['expires_at']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
