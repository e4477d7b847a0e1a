"""How fast the operators' message list answers on a large store (issue 5).

Fills a fresh store (SQLite by default, PostgreSQL with ``--url``) with synthetic messages
(no raw bytes: the list never reads them), then times a first page and a later page for each
filter, and prints the query plan of each so that a scan shows up::

    .venv/bin/python -m bench.message_list --rows 1000000
    .venv/bin/python -m bench.message_list --rows 1000000 --url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, text

from gateway.store.engine import make_engine
from gateway.store.migrate import upgrade
from gateway.store.queries import Cursor, MessageFilter, list_messages
from gateway.store.tables import message_error_codes, messages

CODES = [f"CODE_{i:02d}" for i in range(20)]
STATUSES = (
    ["registered"] * 85 + ["rejected"] * 5 + ["dead_letter"] * 3 + ["delivering"] * 5 + ["accepted"] * 2
)
START = datetime(2026, 1, 1, tzinfo=UTC)


def _row(n: int, rng: random.Random) -> dict[str, Any]:
    status = rng.choice(STATUSES)
    agency = "gendarmerie" if n % 3 else "police"
    unit = f"{rng.randrange(2000):08d}"
    return {
        "receipt_id": f"{n:036d}",
        "agency": agency,
        "sender": f"{agency}:{unit}",
        "transport": "rest",
        "format": f"{agency}/v1",
        "schema_version": "1.0" if n % 10 else "1.1",
        "mapping_version": f"{agency}-v1.0",
        "message_id": f"m-{n}",
        "message_kind": "PROCEDURE_INITIALE",
        "unit_code": unit,
        "procedure_number": f"2026/{n:06d}",
        "tribunal_code": f"TJ{rng.randrange(160):05d}",
        "status": status,
        "http_status": 422 if status == "rejected" else 202,
        "accepted": status != "rejected",
        "sha256": "0" * 64,
        "size": 13000,
        "raw": None,
        "errors": [{"code": rng.choice(CODES), "message": "x"}] if status == "rejected" else [],
        "warnings": [],
        "numero_parquet": f"TJ-2026-{n:010d}" if status == "registered" else None,
        "received_at": START + timedelta(seconds=n * 30),
        "updated_at": START + timedelta(seconds=n * 30),
    }


def fill(engine: Engine, rows: int, batch: int = 20_000) -> None:
    rng = random.Random(5)
    with engine.begin() as conn:
        for first in range(1, rows + 1, batch):
            chunk = [_row(n, rng) for n in range(first, min(first + batch, rows + 1))]
            conn.execute(insert(messages), chunk)
            # ids follow insertion order on a fresh table
            codes = [
                {"message_pk": n, "code": r["errors"][0]["code"], "received_at": r["received_at"]}
                for n, r in enumerate(chunk, start=first)
                if r["errors"]
            ]
            if codes:
                conn.execute(insert(message_error_codes), codes)
        conn.execute(text("ANALYZE"))  # planner statistics, as a live store would have


def timed(engine: Engine, where: MessageFilter, repeat: int) -> tuple[float, float, int]:
    """Median ms of the first page (50) and of the page after it; items on the first page."""
    first_ms, next_ms = [], []
    page = list_messages(engine, where, 50)
    for _ in range(repeat):
        t0 = time.perf_counter()
        page = list_messages(engine, where, 50)
        first_ms.append((time.perf_counter() - t0) * 1000)
        if page.next_cursor:
            t0 = time.perf_counter()
            list_messages(engine, where, 50, Cursor.decode(page.next_cursor))
            next_ms.append((time.perf_counter() - t0) * 1000)
    return statistics.median(first_ms), statistics.median(next_ms) if next_ms else 0.0, len(page.items)


def cases(engine: Engine, rows: int) -> list[tuple[str, MessageFilter]]:
    with engine.connect() as conn:
        parquet = conn.execute(
            select(messages.c.numero_parquet)
            .where(messages.c.id >= rows // 2, messages.c.numero_parquet.is_not(None))
            .limit(1)
        ).scalar_one()
    middle = START + timedelta(seconds=rows * 15)
    return [
        ("no filter", MessageFilter()),
        ("status=dead_letter", MessageFilter(status="dead_letter")),
        ("agency=police", MessageFilter(agency="police")),
        ("unit", MessageFilter(unit_code="00001234")),
        ("schema_version=1.1", MessageFilter(schema_version="1.1")),
        ("error_code", MessageFilter(error_code="CODE_07")),
        ("error_code+agency", MessageFilter(error_code="CODE_07", agency="police")),
        ("tribunal", MessageFilter(tribunal_code="TJ00042")),
        ("procedure_number", MessageFilter(procedure_number=f"2026/{rows // 2:06d}")),
        ("numero_parquet", MessageFilter(numero_parquet=parquet)),
        (
            "received range (1 day)",
            MessageFilter(received_from=middle, received_to=middle + timedelta(days=1)),
        ),
        ("status+range", MessageFilter(status="rejected", received_to=middle)),
        # the worst case: filters on few-valued columns that nothing matches read every row
        ("no match (schema 9.9)", MessageFilter(schema_version="9.9")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", help="PostgreSQL URL (an empty database); default: a fresh SQLite file")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        url = _pg_schema(args.url) if args.url else f"sqlite:///{Path(work) / 'list.db'}"
        upgrade(url)
        engine = make_engine(url)
        t0 = time.perf_counter()
        fill(engine, args.rows)
        print(f"{engine.dialect.name}: {args.rows} messages stored in {time.perf_counter() - t0:.0f} s")
        print(f"{'filter':<26}{'first page ms':>15}{'next page ms':>15}{'items':>7}")
        for name, where in cases(engine, args.rows):
            first, after, count = timed(engine, where, args.repeat)
            print(f"{name:<26}{first:>15.2f}{after:>15.2f}{count:>7}")
        engine.dispose()
    if args.url:
        _drop_pg_schema(args.url)


_SCHEMA = "bench_message_list"


def _pg_schema(url: str) -> str:
    """A schema of its own in the given database, so that nothing else is touched."""
    _drop_pg_schema(url)
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {_SCHEMA}"))
    admin.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{_SCHEMA}"


def _drop_pg_schema(url: str) -> None:
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {_SCHEMA} CASCADE"))
    admin.dispose()


if __name__ == "__main__":
    main()
