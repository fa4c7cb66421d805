"""The SQLAlchemy object shared by every package, and the engine settings we rely on.

SQLite runs in WAL mode with foreign keys enforced and a busy timeout, so the embedded
mode behaves like PostgreSQL for the rules the services depend on (FK errors, concurrent
readers while a job writes).
"""
from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so Alembic migrations name constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):  # pragma: no cover - trivial
    """WAL, foreign keys and a busy timeout on every SQLite connection."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except Exception:  # in-memory databases cannot use WAL; they keep their default
        pass
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def begin_savepoint():
    """``db.session.begin_nested()`` that is a savepoint on SQLite too.

    Python's sqlite3 opens its transaction only at the first INSERT, UPDATE or DELETE, so a SAVEPOINT
    issued before any write starts a transaction of its own, and its RELEASE commits it: the rows
    would be saved for good whatever the request or the import batch did next. Here the outer
    transaction is begun first (a deferred BEGIN, as sqlite3 itself would), so RELEASE only releases.
    """
    conn = db.session.connection()
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        if not raw.in_transaction:
            conn.exec_driver_sql("BEGIN")
    return db.session.begin_nested()


def paginate(stmt, *order_by, page: int = 1, per_page: int = 20) -> tuple[list, int]:
    """One page of ``stmt`` in ``order_by`` order, and the total row count: what every list
    endpoint answers as ``{items, total}``."""
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = db.session.scalars(stmt.order_by(*order_by).limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), int(total or 0)


def insert_for(model):
    """A dialect-aware INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update``
    (SQLite and PostgreSQL spell it the same in SQLAlchemy)."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


def apply_changes(obj, data: dict, fields) -> None:
    """A change (PATCH) to ``obj``: each of ``fields`` present in ``data`` is set. ``None`` empties a field that may be
    empty (an address, a birthday, a note); a field that must hold a value (a name) keeps the one it has."""
    columns = obj.__table__.c
    for key in fields:
        if key not in data:
            continue
        value = data[key]
        if value is None and key in columns and not columns[key].nullable:
            continue
        setattr(obj, key, list(value) if isinstance(value, (list, tuple)) else value)
