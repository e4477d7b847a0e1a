"""``saisine ingest DIR``: submit a folder of messages through the same pipeline as the endpoints.

For a backlog, or a unit without a live link. Each file goes through
:meth:`gateway.intake.Intake.submit` (transport ``file``): same checks, same
storage, same receipts, then delivery by the worker like any accepted message.

Running it again does not submit anything twice: the report is also a journal
(one JSON line per file, written as each file is done), and a file already in it
with the same SHA-256 is skipped; a file whose message was accepted before by
other means is answered as a repeat by the pipeline's idempotency.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import RefusedInput
from gateway.intake import Intake
from gateway.xmlparse import parse

TRANSPORT = "file"


@dataclass
class Summary:
    accepted: int = 0
    repeats: int = 0
    skipped: int = 0
    unreadable: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by error code
    rejected_files: int = 0

    @property
    def total(self) -> int:
        return self.accepted + self.repeats + self.skipped + self.unreadable + self.rejected_files

    def add(self, entry: dict[str, Any]) -> None:
        outcome = entry["outcome"]
        if outcome == "accepted":
            self.accepted += 1
        elif outcome == "repeat":
            self.repeats += 1
        elif outcome == "skipped":
            self.skipped += 1
        elif outcome == "unreadable":
            self.unreadable += 1
        else:
            self.rejected_files += 1
            self.rejected.update(entry.get("codes", []))


def message_files(directory: Path, pattern: str = "*.xml") -> list[Path]:
    """The files to submit, in a stable order (initial procedures usually sort before compléments)."""
    return sorted(p for p in directory.rglob(pattern) if p.is_file())


def read_journal(report: Path) -> dict[str, str]:
    """Files already submitted by an earlier run: path -> SHA-256."""
    done: dict[str, str] = {}
    if not report.exists():
        return done
    for line in report.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut by an interruption: that file is submitted again
            continue
        if entry.get("outcome") not in (None, "unreadable"):
            done[entry["file"]] = entry["sha256"]
    return done


class Ingestion:
    def __init__(self, intake: Intake, report: Path, default_agency: str | None = None) -> None:
        self.intake = intake
        self.report = report
        self.default_agency = default_agency
        self.done = read_journal(report)
        self.summary = Summary()

    def _agency(self, data: bytes) -> tuple[str, Any]:
        """The agency of the message's format (from its namespace), and the parsed tree if any."""
        try:
            root = parse(data, self.intake.limits)
        except RefusedInput:
            return self.default_agency or "unknown", None
        fmt = self.intake.checker.formats.detect(root)
        return (fmt.agency if fmt else self.default_agency or "unknown"), root

    def run(self, files: list[Path]) -> Iterator[dict[str, Any]]:
        """Submit each file; yield its journal entry (also appended to the report)."""
        self.report.parent.mkdir(parents=True, exist_ok=True)
        with self.report.open("a", encoding="utf-8") as journal:
            for path in files:
                entry = self._one(path)
                if entry["outcome"] != "skipped":
                    journal.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    journal.flush()
                self.summary.add(entry)
                yield entry

    def _one(self, path: Path) -> dict[str, Any]:
        key = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            return {"file": key, "sha256": None, "outcome": "unreadable", "reason": exc.strerror}
        sha = hashlib.sha256(data).hexdigest()
        if self.done.get(key) == sha:
            return {"file": key, "sha256": sha, "outcome": "skipped"}
        agency, root = self._agency(data)
        outcome = self.intake.submit(agency, data, TRANSPORT, root=root)
        receipt = outcome.receipt
        if outcome.repeat:
            result = "repeat"
        elif outcome.http_status == 202:
            result = "accepted"
        else:
            result = "rejected"
        return {
            "file": key,
            "sha256": sha,
            "outcome": result,
            "http_status": outcome.http_status,
            "receipt_id": receipt.receipt_id,
            "message_id": receipt.message_id,
            "codes": sorted({e.code for e in receipt.errors}),
            "warnings": receipt.warnings,
        }
