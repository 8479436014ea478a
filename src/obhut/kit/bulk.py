"""Bulk inserts (and updates) for imports and key work: many rows in few statements, inside the caller's unit of work.

Why not `session.execute(table.insert(), rows)`: an executemany steps row by row, and the SQLite driver
hands the GIL back and forth at every row, which stalls when another thread is busy; PostgreSQL pays a
round trip of protocol messages per row. Here SQLite gets multi-row INSERT statements (one step for
hundreds of rows) and PostgreSQL gets COPY. Values go through the columns' bind processors, as they would
through SQLAlchemy; the rest of a row's values must already be what the driver takes (str, bytes, int).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Table, bindparam, column, update, values
from sqlalchemy.orm import Session

SQLITE_VARIABLES = 32766  # SQLite >= 3.32 allows this many parameters per statement
SQLITE_ROWS = 500  # rows per multi-row statement: past a few hundred the gain is gone


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows that all have the same keys (column names) into `table`."""
    if not rows:
        return
    connection = session.connection()
    names = tuple(name for name in table.columns.keys() if name in rows[0])  # noqa: SIM118 - ColumnCollection
    values = _bound(rows, names, connection.dialect, table)
    if connection.dialect.name == "sqlite":
        _sqlite_insert(connection, table, names, values)
    elif connection.dialect.driver == "psycopg":
        _copy(connection, table, names, values)
    else:
        connection.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in values])


def update_rows(session: Session, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Update rows by primary key: each row maps column names to values, `keys` among them. On PostgreSQL one
    `UPDATE ... FROM (VALUES ...)` per thousand rows instead of a round trip per row; elsewhere an
    executemany (in process on SQLite)."""
    if not rows:
        return
    connection = session.connection()
    names = [name for name in table.columns.keys() if name in rows[0]]  # noqa: SIM118 - ColumnCollection
    changed = [name for name in names if name not in keys]
    if connection.dialect.name != "postgresql":
        where = [table.c[k] == bindparam(f"k_{k}") for k in keys]
        statement = update(table).where(*where).values({n: bindparam(f"v_{n}") for n in changed})
        connection.execute(statement, [{f"{'k' if n in keys else 'v'}_{n}": row[n] for n in names} for row in rows])
        return
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        given = values(*(column(n, table.c[n].type) for n in names), name="given").data(
            [tuple(row[n] for n in names) for row in chunk]
        )
        where = [table.c[k] == given.c[k] for k in keys]
        connection.execute(update(table).where(*where).values({n: given.c[n] for n in changed}))


def _bound(
    rows: Sequence[Mapping[str, Any]], names: tuple[str, ...], dialect: Dialect, table: Table
) -> list[tuple[Any, ...]]:
    """Rows as tuples in column order, bind processors applied. Bulk rows share their timestamps: a value
    that is the same object as in the row before is converted once, not once per row."""
    get = itemgetter(*names)
    tuples: list[tuple[Any, ...]] = [get(row) for row in rows] if len(names) > 1 else [(get(row),) for row in rows]
    processors = [
        (position, processor)
        for position, name in enumerate(names)
        if (processor := table.columns[name].type.bind_processor(dialect)) is not None
    ]
    if not processors:
        return tuples
    last: dict[int, tuple[Any, Any]] = {}
    out = []
    for row in tuples:
        listed = list(row)
        for position, processor in processors:
            value = listed[position]
            seen = last.get(position)
            if seen is None or seen[0] is not value:
                seen = last[position] = (value, None if value is None else processor(value))
            listed[position] = seen[1]
        out.append(tuple(listed))
    return out


@cache
def _sqlite_statement(dialect: Dialect, table: Table, names: tuple[str, ...], count: int) -> str:
    quote = dialect.identifier_preparer
    one = "(" + ", ".join("?" * len(names)) + ")"
    # S608: table and column names come from the table's metadata, quoted by the dialect; values are bound
    into = f"INSERT INTO {quote.format_table(table)} ({_columns(dialect, names)}) VALUES "  # noqa: S608
    return into + ", ".join([one] * count)


def _columns(dialect: Dialect, names: tuple[str, ...]) -> str:
    return ", ".join(dialect.identifier_preparer.quote(name) for name in names)


def _sqlite_insert(connection: Connection, table: Table, names: tuple[str, ...], values: list[tuple[Any, ...]]) -> None:
    per = max(1, min(SQLITE_ROWS, SQLITE_VARIABLES // len(names)))
    for start in range(0, len(values), per):
        chunk = values[start : start + per]
        statement = _sqlite_statement(connection.dialect, table, names, len(chunk))
        connection.exec_driver_sql(statement, tuple(chain.from_iterable(chunk)))


def _copy(connection: Connection, table: Table, names: tuple[str, ...], values: list[tuple[Any, ...]]) -> None:
    target = f"{connection.dialect.identifier_preparer.format_table(table)} ({_columns(connection.dialect, names)})"
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
    finally:
        cursor.close()
