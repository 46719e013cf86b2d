"""Queries the ORM writes once and the sender runs many times: compiled SQL with fresh values.

Building and compiling one query costs about 0.35 ms of CPU on our 2-core
machine, ten times what running the same SQL costs (docs/PERFORMANCE.md,
"Where the time went"); the sender runs the same dozen queries for every
delivery. A Compiled query is written with the ORM, from the model's metadata
and the shared expressions (the one "due" rule, the breaker's gate), with
Param placeholders where values change. Its SQL is made by Django once per
database vendor and shape (an IN list's length, a LIMIT); each run binds every
Param through its field as the ORM would (UUIDs as text on SQLite, datetimes
adapted, JSON wrapped) and converts each row as the ORM would. So the SQL is
the ORM's on both stores, and no statement is written by hand twice.

A Compiled SELECT may be wrapped (an INSERT ... SELECT, a RETURNING clause):
the wrapper adds SQL around the ORM's, never inside it.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Expression, Field, Func, Model, Q, QuerySet, UUIDField
from django.db.models.constants import OnConflict
from django.db.models.sql.subqueries import DeleteQuery, InsertQuery, UpdateQuery

# PostgreSQL prepares a compiled statement on its second run on a connection (psycopg's
# prepare_threshold); Django's own cursors never prepare (client-side binding), so only these do.
PREPARE_AFTER = 1


def _cursor(connection):
    """Return a cursor for a compiled statement: on PostgreSQL one that binds on the server and prepares.

    Django's own PostgreSQL cursors bind values in the client, quoting each into the
    SQL text, and PostgreSQL plans each text anew: for the sender's statements that
    was a fifth of a delivery's CPU (docs/PERFORMANCE.md). A statement compiled here
    is the same text every time, so PostgreSQL prepares it once per connection and
    the values travel apart. The cursor is wrapped as Django wraps its own, so
    errors, CaptureQueriesContext and execute wrappers see it the same.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = PREPARE_AFTER
    return connection._prepare_cursor(_preparing_cursor_class()(raw))


@functools.cache
def _preparing_cursor_class():
    import psycopg

    class PreparingCursor(psycopg.Cursor):
        """psycopg's server-side binding cursor, keeping the text of a prepared statement for Django's query log.

        (psycopg forgets it when it runs a prepared statement; CaptureQueriesContext and
        the DEBUG query log read it.)
        """

        def execute(self, query, params=None, **kwargs):
            result = super().execute(query, params, **kwargs)
            if self._query is None:
                self._query = _Text(query.encode() if isinstance(query, str) else query)
            return result

    return PreparingCursor


@dataclass(frozen=True)
class _Text:
    query: bytes


class Param(Expression):
    """A value given when the query runs: `name`, or item `index` of the list given as `name`."""

    def __init__(self, name: str, field: Field, index: int | None = None):
        super().__init__(output_field=field)
        self.name = name
        self.index = index

    def as_sql(self, compiler, connection):
        return "%s", [self]

    def bind(self, values: dict, connection) -> Any:
        value = values[self.name] if self.index is None else values[self.name][self.index]
        return self.output_field.get_db_prep_save(value, connection)

    def __repr__(self) -> str:
        return f"Param({self.name!r})" if self.index is None else f"Param({self.name!r}[{self.index}])"


class NewUUID(Func):
    """A random (version 4) UUID made by the database, one per row (an INSERT ... SELECT has no Python per row)."""

    output_field = UUIDField()

    def as_sql(self, compiler, connection, **extra):
        return "gen_random_uuid()", []  # PostgreSQL 13 and later

    def as_sqlite(self, compiler, connection, **extra):
        # 32 hex digits, as Django stores a UUID on SQLite, with the version (4) and variant (8-b) digits.
        # ("%%" is one "%" once the parameters are bound.)
        return ("lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) || "
                "substr('89ab', 1 + (abs(random()) %% 4), 1) || substr(hex(randomblob(2)), 2) || "
                "hex(randomblob(6)))"), []


def params(name: str, field: Field, count: int) -> list[Param]:
    """Return Params for the items of a list value (an IN list of `count` items)."""
    return [Param(name, field, i) for i in range(count)]


def any_equal(lookup: str, name: str, field: Field, count: int) -> Q:
    """Return `lookup` equal to any item of the list value `name`, for a relation (an IN list of Params is
    refused on a foreign key: Django checks each item's value when the query is built)."""
    condition = Q()
    for param in params(name, field, count):
        condition |= Q(**{lookup: param})
    return condition


@dataclass(frozen=True)
class Insert:
    """What a Compiled INSERT writes: rows of `model` (instances whose values may be Params)."""

    model: type[Model]
    fields: list[str]
    rows: list[Model]
    ignore_conflicts: bool = False
    returning: tuple[str, ...] = ()
    # An upsert: a row whose `conflict` fields match a stored row's adds its `add` fields to that row's
    # (ON CONFLICT (...) DO UPDATE SET f = f + EXCLUDED.f; PostgreSQL and SQLite 3.24 and later).
    conflict: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    # Or: a row whose `conflict` fields match a stored row's sets that row's boolean field `clear` to false where
    # it was true, and is returned too (ON CONFLICT (...) DO UPDATE SET f = false WHERE f ... RETURNING; a
    # stored row where it was false is left as it is and not returned).
    clear: str | None = None


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple
    converters: dict  # {column position: ([converter, ...], expression)}
    # Rows to fetch (a SELECT, a RETURNING). Asking the cursor instead (its description) builds a
    # Column object per column on every run: a third of a small statement's CPU.
    fetches: bool = True


class Compiled:
    """A query built by `build(*shape)`: a values_list QuerySet, an Insert, (QuerySet, {field: value}) for an
    UPDATE, or a QuerySet to DELETE (`delete=True`).

    run(shape, **values) returns the rows of a SELECT or of a RETURNING clause
    (an Insert's, or an UPDATE's `returning` columns), converted as the ORM
    would, as tuples; or the number of rows an UPDATE or DELETE changed. `wrap`
    turns the compiled SELECT's SQL into the statement to run (for
    INSERT ... SELECT ... RETURNING), which returns the SELECT's first
    `wrap_returns` columns (converted as the SELECT's).
    """

    def __init__(self, build: Callable[..., Any], *, update: bool = False, delete: bool = False,
                 wrap: Callable[[str], str] | None = None, wrap_returns: int | None = None,
                 returning: tuple[str, ...] = ()):
        self._build = build
        self._returning = returning  # an UPDATE's RETURNING columns (of the updated model)
        self._counts = (update or delete) and not returning  # run() returns a row count
        self._update = update
        self._delete = delete
        self._wrap = wrap
        self._wrap_returns = wrap_returns
        self._plans: dict = {}

    def _plan(self, connection, shape: tuple) -> _Plan:
        key = (connection.alias, connection.vendor, shape)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._compile(connection, shape)
        return plan

    def _compile(self, connection, shape: tuple) -> _Plan:
        built = self._build(*shape)
        if self._update:
            queryset, values = built
            query = queryset.query.chain(UpdateQuery)
            query.add_update_values(values)
            compiler = query.get_compiler(connection=connection)
            # A subquery that locks rows (FOR UPDATE SKIP LOCKED) is only compiled inside a transaction;
            # the statement itself is atomic and runs in autocommit.
            with transaction.atomic(using=connection.alias):
                sql, params = compiler.as_sql()
            if not self._returning:
                return _Plan(sql, tuple(params), {}, fetches=False)
            opts = queryset.model._meta
            fields = [opts.get_field(name) for name in self._returning]
            sql += " RETURNING " + ", ".join(connection.ops.quote_name(f.column) for f in fields)
            return _Plan(sql, tuple(params), compiler.get_converters([f.get_col(opts.db_table) for f in fields]))
        if self._delete:
            sql, params = built.query.chain(DeleteQuery).get_compiler(connection=connection).as_sql()
            return _Plan(sql, tuple(params), {}, fetches=False)
        if isinstance(built, Insert):
            return self._compile_insert(connection, built)
        assert isinstance(built, QuerySet), "a Compiled select is built from a values_list QuerySet"
        compiler = built.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        columns = [select[0] for select in compiler.select[:compiler.col_count]]
        if self._wrap is not None:
            sql = self._wrap(sql)
            columns = columns[:self._wrap_returns]
        return _Plan(sql, tuple(params), compiler.get_converters(columns))

    @staticmethod
    def _compile_insert(connection, insert: Insert) -> _Plan:
        opts = insert.model._meta
        query = InsertQuery(insert.model, on_conflict=OnConflict.IGNORE if insert.ignore_conflicts else None)
        query.insert_values([opts.get_field(name) for name in insert.fields], insert.rows)
        compiler = query.get_compiler(connection=connection)
        returning = [opts.get_field(name) for name in insert.returning]
        compiler.returning_fields = (returning or None) if insert.clear is None else None
        [(sql, params)] = compiler.as_sql()
        if insert.clear is not None:  # the RETURNING clause comes after ON CONFLICT
            quote, table = connection.ops.quote_name, connection.ops.quote_name(opts.db_table)
            target = ", ".join(quote(opts.get_field(name).column) for name in insert.conflict)
            column = quote(opts.get_field(insert.clear).column)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {column} = false WHERE {table}.{column}"
            if returning:
                sql += " RETURNING " + ", ".join(f"{table}.{quote(f.column)}" for f in returning)
        if insert.add:
            assert not returning, "an upsert returns nothing (RETURNING would come before ON CONFLICT)"
            quote, table = connection.ops.quote_name, connection.ops.quote_name(opts.db_table)
            target = ", ".join(quote(opts.get_field(name).column) for name in insert.conflict)
            sets = ", ".join(f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}"
                             for c in (opts.get_field(name).column for name in insert.add))
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        columns = [field.get_col(opts.db_table) for field in returning]
        return _Plan(sql, tuple(params), compiler.get_converters(columns) if columns else {}, fetches=bool(columns))

    def run(self, shape: tuple = (), using: str = DEFAULT_DB_ALIAS, **values) -> Any:
        connection = connections[using]
        plan = self._plan(connection, shape)
        bound = [p.bind(values, connection) if isinstance(p, Param) else p for p in plan.params]
        with _cursor(connection) as cursor:
            cursor.execute(plan.sql, bound)
            if self._counts:
                return cursor.rowcount
            rows = cursor.fetchall() if plan.fetches else []
        if not plan.converters:
            return rows
        converted = []
        for row in rows:
            row = list(row)
            for position, (converters, expression) in plan.converters.items():
                value = row[position]
                for converter in converters:
                    value = converter(value, expression, connection)
                row[position] = value
            converted.append(tuple(row))
        return converted
