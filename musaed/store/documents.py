"""Documents people send in the chat: their rows (the files themselves: musaed/documents.py).

A document arrives in a conversation (`add_document`), is taken as one of the
service's documents at the form's documents step (`take_document`), and goes
with the request when it is made (`attach_documents`, inside create_request's
transaction). One that never becomes part of a request is discarded when the
request stops, or purged with the short-lived rows; one of a request is
purged some time after the request closes (musaed/retention.py). Functions
that delete rows return the files' names, which the caller removes.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from musaed.store.connection import Db, _insert, _one, transaction
from musaed.store.schema import _CLOSED_SQL


def add_document(db: Db, row: dict) -> None:
    """A document just received (no kind, no request yet): one INSERT."""
    _insert(db, "documents", row)


def get_document(db: Db, document_id: str) -> Optional[dict]:
    return _one(db, "SELECT * FROM documents WHERE id = ?", [document_id])


def take_document(db: Db, document_id: str, conversation: str, service_id: str, kind: str) -> Optional[dict]:
    """`document_id` taken as the service's `kind`: only a document this conversation sent, not
    taken before and not part of a request (a reference typed into another conversation, or
    sent twice, takes nothing). The row, or None."""
    with transaction(db):
        changed = db.execute(
            "UPDATE documents SET service_id = ?, kind = ? "
            "WHERE id = ? AND conversation = ? AND kind IS NULL AND tracking_number IS NULL",
            [service_id, kind, document_id, conversation],
        ).rowcount
    return get_document(db, document_id) if changed == 1 else None


def staged_documents(db: Db, conversation: str, service_id: str) -> List[dict]:
    """The documents taken for the request under way in `conversation` (in the order they came, to
    the second: Service.in_document_order puts them in the catalogue's)."""
    return list(
        db.query(
            "SELECT * FROM documents WHERE conversation = ? AND service_id = ? AND kind IS NOT NULL "
            "AND tracking_number IS NULL ORDER BY received_at, id",
            [conversation, service_id],
        )
    )


def attach_documents(db: Db, tracking_number: str, conversation: str, document_ids: Sequence[str], at: str) -> None:
    """Inside the request's own transaction: its documents become the request's. Raises
    LookupError (and so undoes the request) when one is no longer there to attach."""
    for document_id in document_ids:
        changed = db.execute(
            "UPDATE documents SET tracking_number = ?, attached_at = ? "
            "WHERE id = ? AND conversation = ? AND tracking_number IS NULL",
            [tracking_number, at, document_id, conversation],
        ).rowcount
        if changed != 1:
            raise LookupError(f"document {document_id} is no longer there to attach")


def request_documents(db: Db, tracking_number: str) -> List[dict]:
    """A request's documents (in the order they came, to the second)."""
    return list(
        db.query("SELECT * FROM documents WHERE tracking_number = ? ORDER BY received_at, id", [tracking_number])
    )


def _delete(db: Db, where: str, params: list) -> List[str]:
    with transaction(db):
        names = [row["stored_name"] for row in db.query(f"SELECT stored_name FROM documents WHERE {where}", params)]
        db.execute(f"DELETE FROM documents WHERE {where}", params)
    return names


def discard_document(db: Db, document_id: str, conversation: str) -> List[str]:
    """A document of `conversation` that no request will take (sent when none was asked for)."""
    return _delete(db, "id = ? AND conversation = ? AND tracking_number IS NULL", [document_id, conversation])


def discard_staged(db: Db, conversation: str) -> List[str]:
    """Every document of `conversation` not part of a request (the request stopped)."""
    return _delete(db, "conversation = ? AND tracking_number IS NULL", [conversation])


def purge_documents(db: Db, staged_before: str, closed_before: str) -> List[str]:
    """Documents no request took, received before `staged_before`, and those of requests
    closed (delivered, rejected, cancelled) before `closed_before`."""
    if "documents" not in db.table_names():
        return []
    return _delete(
        db,
        "(tracking_number IS NULL AND received_at < ?) OR tracking_number IN ("
        f"SELECT tracking_number FROM requests WHERE status IN ({_CLOSED_SQL}) AND updated_at < ?)",
        [staged_before, closed_before],
    )


def stored_names(db: Db) -> set:
    """Every file name the store knows (a file on disk without one is an orphan)."""
    return {row["stored_name"] for row in db.query("SELECT stored_name FROM documents")}
