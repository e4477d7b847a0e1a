"""The bound for the ingest benchmark: the gateway's server stack with a bare endpoint.

Same stack as ``saisine serve``: FastAPI on uvicorn, the same ``uvicorn.run`` settings, the
endpoint answered in front of FastAPI's routing (``gateway.http.direct.DirectRoutes``) and its
blocking work run on the gateway's intake threads (``gateway.http.threads.IntakeThreads``,
``SAISINE_INTAKE_THREADS``, 2 by default), and SQLite through
``gateway.store.engine.make_engine`` (WAL, synchronous=FULL) with writers queued on a lock as
``SqlStore`` does. The one endpoint reads the body, parses it with the hardened parser,
validates it against the compiled XSD and inserts the raw bytes into a one-table database with
one commit: what any ingest must do at least.

    python -m bench.bound_server --port 8181 --database-url sqlite:////tmp/bound.db
"""

from __future__ import annotations

import argparse
import threading
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table, insert

from gateway.errors import RefusedInput
from gateway.http.app import settle_collector
from gateway.http.direct import DirectRoutes
from gateway.http.threads import IntakeThreads
from gateway.paths import SCHEMAS_DIR
from gateway.settings import Settings
from gateway.store.engine import make_engine
from gateway.validation import compile_schema, validate
from gateway.xmlparse import parse

PATH = "/api/v1/gendarmerie/procedures"

metadata = MetaData()
raw_messages = Table(
    "raw_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("raw", LargeBinary, nullable=False),
    Column("received_at", DateTime, nullable=False),
)


def create_bound_app(database_url: str) -> FastAPI:
    """An app whose only work per message is parse, XSD, insert and commit."""
    engine = make_engine(database_url)
    metadata.create_all(engine)
    schema = compile_schema(SCHEMAS_DIR / "gendarmerie" / "v1" / "procedure.xsd")
    write_lock = threading.Lock()
    # the gateway's intake threads, as many as it would run (Starlette's pool of forty threads
    # made this endpoint about a fifth slower: docs/benchmarks.md)
    threads = IntakeThreads(Settings().intake_threads)
    app = FastAPI(title="Saisine ingest bound")

    def ingest(body: bytes) -> int:
        try:
            root = parse(body)
        except RefusedInput:
            return 400
        if validate(schema, root):
            return 422
        with write_lock, engine.begin() as conn:
            conn.execute(insert(raw_messages).values(raw=body, received_at=datetime.now(UTC)))
        return 202

    async def submit(request: Request) -> JSONResponse:
        body = await request.body()
        status = await threads.run(ingest, body)
        return JSONResponse({"status": "accepted" if status == 202 else "rejected"}, status_code=status)

    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route(PATH, submit, methods=["POST"], status_code=202, response_model=None)
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_middleware(DirectRoutes, routes={PATH: submit})  # answered as the gateway answers its own
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    app = create_bound_app(args.database_url)
    settle_collector()  # as `saisine serve` does
    # the same call as `saisine serve` (gateway/cli.py): default loop (uvloop) and HTTP parser
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
