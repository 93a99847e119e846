"""People's records: the person, their family, passport, insurance, fines and family record."""

from __future__ import annotations

from typing import List, Optional

from musaed.store.connection import Db, _one

# -- people and their records ------------------------------------------------


def people_count(db: Db) -> int:
    return db.execute("SELECT COUNT(*) FROM people").fetchone()[0]


def get_person(db: Db, national_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM people WHERE national_id = ?", [national_id])


def dependents(db: Db, head_id: str) -> List[dict]:
    """The people whose services `head_id` may request, with their relation."""
    return list(
        db.query(
            "SELECT p.*, f.relation FROM family_links f JOIN people p ON p.national_id = f.member_id "
            "WHERE f.head_id = ? ORDER BY p.birth_date",
            [head_id],
        )
    )


def relation(db: Db, head_id: str, member_id: str) -> Optional[str]:
    row = _one(db, "SELECT relation FROM family_links WHERE head_id = ? AND member_id = ?", [head_id, member_id])
    return row["relation"] if row else None


def passport(db: Db, national_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM passports WHERE national_id = ?", [national_id])


def insurance(db: Db, national_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM health_insurance WHERE national_id = ?", [national_id])


def unpaid_fines(db: Db, national_id: str) -> List[dict]:
    return list(db.query("SELECT * FROM fines WHERE national_id = ? AND paid = 0", [national_id]))


def family_record(db: Db, head_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM family_records WHERE head_id = ?", [head_id])
