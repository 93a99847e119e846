"""The demo population: people whose records make every path of every flow reachable.

`python -m musaed.seed` (make seed) rebuilds the database at MUSAED_DB or
var/musaed.db.  Dates are relative to the day of seeding, so "expires in 30
days" stays true for a while after.  The README lists these identities.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from typing import Optional

from musaed import settings, store
from musaed.identity import check_digit_ok


def with_check_digit(first_nine: str) -> str:
    """Complete a 9-digit prefix into a valid national id / iqama number."""
    for d in "0123456789":
        if check_digit_ok(first_nine + d):
            return first_nine + d
    raise ValueError(first_nine)


def ids() -> dict:
    prefixes = {
        "khalid": "101000001",
        "amal": "201000002",
        "saud": "101000003",
        "reem": "101000004",
        "sara": "101000005",
        "fahd": "101000006",
        "noura": "101000007",
        "ahmed": "201000008",
        "maryam": "201000009",
        "yousef": "201000010",
        "layla": "201000011",
        "fatima": "201000012",
        "abdullah": "101000013",
    }
    return {name: with_check_digit(p) for name, p in prefixes.items()}


def seed(db, today: Optional[date] = None) -> dict:
    today = today or date.today()

    def days(n: int) -> str:
        return (today + timedelta(days=n)).isoformat()

    def born(years: int, extra_days: int = 40) -> str:
        return (today - timedelta(days=round(years * 365.25) + extra_days)).isoformat()

    i = ids()
    addr_riyadh = "الرياض، حي النرجس، 7781 طريق الملك عبدالعزيز، 13325"
    addr_jeddah = "جدة، حي الروضة، 3456 شارع فلسطين، 23435"
    addr_dammam = "الدمام، حي الفيصلية، 2210 شارع الأمير محمد، 32272"

    def person(key, name, kind, birth, mobile, id_expiry, photo=days(700), address=addr_riyadh, **extra):  # noqa: B008
        return {
            "national_id": i[key],
            "name": name,
            "kind": kind,
            "birth_date": birth,
            "mobile": mobile,
            "id_expiry": id_expiry,
            "photo_valid_until": photo,
            "national_address": address,
            "data_verified": 1,
            "medical_exam_ok": 1,
            "card_pending_activation": 0,
            **extra,
        }

    people = [
        # Khalid: every citizen path passes; his family covers the dependent paths.
        person("khalid", "خالد العتيبي", "citizen", born(41), "0551000001", days(30)),
        person("amal", "أمل حسين", "resident", born(36), "0551000002", days(20)),
        person("saud", "سعود العتيبي", "citizen", born(12), None, None),
        person("reem", "ريم العتيبي", "citizen", born(8), None, None),
        # One failing requirement each.
        person("sara", "سارة القحطاني", "citizen", born(29), "0551000005", days(900)),
        person("fahd", "فهد الدوسري", "citizen", born(33), "0551000006", days(60), photo=days(-100)),
        person("noura", "نورة الشهري", "citizen", born(45), "0551000007", days(45), address=None),
        # A resident head of family and his dependents.
        person("ahmed", "أحمد عبدالرحمن", "resident", born(39), "0551000008", days(200), address=addr_jeddah),
        person("maryam", "مريم يوسف", "resident", born(34), None, days(15), address=addr_jeddah),
        person("yousef", "يوسف أحمد", "resident", born(16), None, days(10), address=addr_jeddah),
        person("layla", "ليلى أحمد", "resident", born(13), None, days(25), address=addr_jeddah),
        person("fatima", "فاطمة محمود", "resident", born(64), None, days(5), address=addr_jeddah, medical_exam_ok=1),
        # A new card received, waiting for activation.
        person(
            "abdullah",
            "عبدالله المطيري",
            "citizen",
            born(52),
            "0551000013",
            days(3650),
            address=addr_dammam,
            card_pending_activation=1,
        ),
    ]
    links = [
        ("khalid", "amal", "wife"),
        ("khalid", "saud", "son"),
        ("khalid", "reem", "daughter"),
        ("ahmed", "maryam", "wife"),
        ("ahmed", "yousef", "son"),
        ("ahmed", "layla", "daughter"),
        ("ahmed", "fatima", "mother"),
    ]
    passports = [
        ("amal", "P1000002", days(800)),
        ("ahmed", "P1000008", days(900)),
        ("maryam", "P1000009", days(-30)),  # expired passport
        ("yousef", "P1000010", days(700)),
        ("layla", "P1000011", days(600)),
        ("fatima", "P1000012", days(500)),
    ]
    insurance = [
        ("amal", "التعاونية", days(300)),
        ("ahmed", "بوبا", days(300)),
        ("maryam", "بوبا", days(300)),
        ("yousef", "بوبا", days(-10)),  # expired insurance
        ("layla", "بوبا", days(300)),
        ("fatima", "بوبا", days(300)),
    ]
    fines = [
        ("fatima", 500, "مخالفة تأخر تجديد هوية مقيم", 0),  # unpaid
        ("khalid", 300, "مخالفة مرورية", 1),  # paid: does not block
    ]
    # A demo reset, not a business write.
    store.clear_records(db)
    store.insert_rows(db, "people", people)
    store.insert_rows(db, "family_links", ({"head_id": i[h], "member_id": i[m], "relation": r} for h, m, r in links))
    store.insert_rows(db, "passports", ({"national_id": i[k], "number": n, "expiry": e} for k, n, e in passports))
    store.insert_rows(
        db, "health_insurance", ({"national_id": i[k], "provider": p, "expiry": e} for k, p, e in insurance)
    )
    store.insert_rows(
        db, "fines", ({"national_id": i[k], "amount": a, "description": d, "paid": p} for k, a, d, p in fines)
    )
    store.insert_rows(db, "family_records", [{"head_id": i["khalid"], "number": "FR-778120", "status": "valid"}])
    return i


def main() -> int:
    parser = argparse.ArgumentParser(description="Load Musaed's demo population.")
    parser.add_argument("--if-missing", action="store_true", help="seed only when the database has nobody in it yet")
    args = parser.parse_args()
    url = settings.DATABASE_URL.given()
    where = url.split("@")[-1] if url else str(store.db_path())
    if args.if_missing and not url and not store.db_path().exists():
        pass  # a new SQLite file: seed it
    elif args.if_missing and store.people_count(store.open_db()) > 0:
        return 0
    seeded = seed(store.open_db())
    print(f"seeded {len(seeded)} demo people into {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
