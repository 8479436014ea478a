"""Bulk inserts for imports: many rows in few statements, still inside the caller's unit of work.

Why not `session.execute(table.insert(), rows)`: an executemany steps row by row, and the SQLite driver
hands the GIL back and forth at every row, which stalls when another thread is busy; PostgreSQL pays a
round trip of protocol messages per row. Here SQLite gets multi-row INSERT statements (one step for
hundreds of rows) and PostgreSQL gets COPY. Values go through the columns' bind processors, as they would
through SQLAlchemy; the rest of a row's values must already be what the driver takes (str, bytes, int).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Dialect,
    Integer,
    Table,
    Text,
    any_,
    cast,
    false,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import QueryableAttribute, Session

T = TypeVar("T")
SQLITE_VARIABLES = 32766  # SQLite >= 3.32 allows this many parameters per statement
SQLITE_ROWS = 500  # rows per multi-row statement: past a few hundred the gain is gone


IN_LIST = 500  # ids per `IN (...)` list: well inside every driver's parameter limits


def chunks(items: Sequence[T], size: int = IN_LIST) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size` (the standard library's `batched` is 3.12+)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def among(
    session: Session, column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[int] | Sequence[str]
) -> ColumnElement[bool]:
    """`column IN values` for thousands of integers or ids as one bound parameter, split by the session's
    database: an IN list binds, renders and sends one parameter per value, which for a few thousand costs more
    than the query."""
    if not values:
        return false()
    if session.get_bind().dialect.name == "postgresql":
        if all(isinstance(value, int) for value in values):
            listed = ",".join(str(int(value)) for value in values)
            return column == any_(cast(func.string_to_array(listed, ","), ARRAY(Integer)))
        listed_json = literal(json.dumps(list(values)), Text)
        return column.in_(select(func.jsonb_array_elements_text(cast(listed_json, JSONB))))
    return column.in_(select(literal_column("value")).select_from(func.json_each(json.dumps(list(values)))))


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows that all have the same keys (column names) into `table`."""
    if not rows:
        return
    connection = session.connection()
    names = tuple(name for name in table.columns.keys() if name in rows[0])  # noqa: SIM118 - ColumnCollection
    values = _bound(rows, names, connection.dialect, table)
    if connection.dialect.name == "sqlite":
        _sqlite_insert(connection, table, names, values)
    elif connection.dialect.driver == "psycopg" and len(values) > 1:  # COPY takes a round trip more than INSERT
        _copy(connection, table, names, values)
    else:
        connection.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in values])


def _bound(
    rows: Sequence[Mapping[str, Any]], names: tuple[str, ...], dialect: Dialect, table: Table
) -> list[tuple[Any, ...]]:
    """Rows as tuples in column order, bind processors applied. Bulk rows share their timestamps: a value
    that is the same object as in the row before is converted once, not once per row."""
    get = itemgetter(*names)
    tuples: list[tuple[Any, ...]] = [get(row) for row in rows] if len(names) > 1 else [(get(row),) for row in rows]
    processors = _processors(dialect, table, names)
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
def _processors(dialect: Dialect, table: Table, names: tuple[str, ...]) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, bind processor) of the columns that have one: made once, not for every insert (a single-row
    insert, such as a logged read's entry, would spend more on making them than on the row)."""
    return [
        (position, processor)
        for position, name in enumerate(names)
        if (processor := table.columns[name].type.bind_processor(dialect)) is not None
    ]


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
