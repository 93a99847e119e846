"""The application database: people's records and service requests, in SQLite or PostgreSQL.

Plain functions that take a `db` (sqlite_utils.Database), named migrations
recorded in a table, one transaction per write that belongs together. This
is the only module that speaks SQL to the application data: identity,
eligibility, customer care, the seed and the scripts call these functions,
so PostgreSQL is one adapter (musaed/store/postgres.py), not a second store.
SQLite is the default; ``MUSAED_DATABASE_URL=postgresql://…`` selects
PostgreSQL. The SQL is written once, in what both engines share.

The package is split by what it holds (connection, schema, people, codes,
requests, sessions, documents); callers use the functions from here, `store.open_db`,
`store.create_request`, as before.
"""

from musaed.store.codes import (  # noqa: F401
    clear_verification_lock,
    code_requests_since,
    ids_asked_since,
    latest_code,
    latest_code_request,
    pending_code,
    record_code_request,
    save_code,
    set_verification_lock,
    use_code,
    verification_lock,
    write_outbox,
)
from musaed.store.connection import (  # noqa: F401
    DEFAULT_PATH,
    TRACKING_PREFIX,
    Db,
    db_path,
    dialect,
    now_iso,
    open_db,
    serialize,
    transaction,
)
from musaed.store.documents import (  # noqa: F401
    add_document,
    attach_documents,
    discard_document,
    discard_staged,
    get_document,
    purge_documents,
    request_documents,
    staged_documents,
    stored_names,
    take_document,
)
from musaed.store.handover import (  # noqa: F401
    agents_seen_since,
    purge_handovers,
)
from musaed.store.people import (  # noqa: F401
    dependents,
    family_record,
    get_person,
    insurance,
    passport,
    people_count,
    relation,
    unpaid_fines,
)
from musaed.store.requests import (  # noqa: F401
    RequestConflict,
    add_care_audit,
    can_see_request,
    care_audit,
    create_request,
    get_request,
    open_request,
    parse_tracking_number,
    request_events,
    requests_of_person,
    requests_visible_to,
    set_request_status,
)
from musaed.store.schema import (  # noqa: F401
    _M001_INITIAL,
    CLOSED_STATUSES,
    MIGRATIONS,
    applied_migrations,
    clear_records,
    delete_older,
    insert_rows,
    integrity_errors,
    migrate,
)
from musaed.store.sessions import (  # noqa: F401
    end_web_session,
    first_delivery,
    live_web_session,
    start_web_session,
    touch_web_session,
)
