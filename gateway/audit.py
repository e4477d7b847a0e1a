"""The audit record: a chain of records that no one can rewrite unnoticed.

Every reception (acceptance or rejection), delivery outcome, replay, consultation of a
message's personal data, credential change and purge is one :class:`AuditRecord`. Records
are numbered from 1 without gaps (``seq``) and each one is sealed by a SHA-256 ``hash`` over
its own fields *and* the hash of the record before it (``prev_hash``; the first record's is
:data:`GENESIS`, 64 zeros). Changing, removing or inserting a record therefore breaks the
chain at that point, and :func:`verify` names the first record where it breaks.

What is hashed is :func:`canonical`: the JSON object of the fields ``seq``, ``at`` (UTC, ISO
8601 with microseconds), ``kind``, ``actor``, ``subject``, ``detail`` and ``prev_hash``,
written with sorted keys, no spaces and UTF-8 (``json.dumps(..., sort_keys=True,
separators=(",", ":"), ensure_ascii=False)``). An external tool recomputes a hash from an
exported line with the same few lines of code.

A record never carries personal data: ``subject`` is a receipt id or a replay id, ``detail``
holds codes, statuses, hashes and counts. The person's data stays in the message, which
the purge may erase; the record that it was received, consulted or purged stays.

Writing (``gateway.store.audit``): the record is appended in the *same transaction* as the
business change it records, so a record exists if and only if that change committed. A
one-row head (last ``seq``, last ``hash``) is updated with each append; on PostgreSQL that
row lock serializes the appends of every gateway instance, so appending is the last
statement of its transaction (the lock is then held only for the commit, and a
transaction holding it waits for nothing else: no deadlock).

Anchoring: someone with write access to the database could rewrite a record and recompute
every hash after it (and the head). Only a copy of a head kept elsewhere detects that:
``saisine audit export`` prints the head (``SEQ:HASH``), which an external timestamping or
archive service keeps; ``saisine audit verify --anchor SEQ:HASH`` then proves that the
history up to ``SEQ`` is the one that was anchored (its hash commits to every record before
it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gateway.ports import NewMessage, Status

GENESIS = "0" * 64

# The kinds of record. Reception of a message is recorded with its verdict, as one record:
# ``acceptance`` or ``rejection`` (``reception`` is kept for receptions without a verdict).
RECEPTION = "reception"
ACCEPTANCE = "acceptance"
REJECTION = "rejection"
DELIVERY = "delivery"
REPLAY = "replay"
CONSULTATION = "consultation"
CREDENTIAL = "credential"
PURGE = "purge"
KINDS = (RECEPTION, ACCEPTANCE, REJECTION, DELIVERY, REPLAY, CONSULTATION, CREDENTIAL, PURGE)


@dataclass(frozen=True, slots=True)
class Entry:
    """What happened, before it takes its place in the chain.

    ``actor``: who did it (a sender, a worker, an operator); ``subject``: what it was done to
    (a receipt id, a replay id: at most 64 characters); ``detail``: JSON values only (str,
    int, float, bool, None, lists, dicts with str keys), and never personal data.
    """

    kind: str
    actor: str
    subject: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A record in the chain, as stored and exported."""

    seq: int
    at: datetime
    kind: str
    actor: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        """The record as an export line (the fields hashed, plus the hash)."""
        return {
            **_fields(self.seq, self.at, self.kind, self.actor, self.subject, self.detail, self.prev_hash),
            "hash": self.hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditRecord:
        return cls(
            seq=int(data["seq"]),
            at=datetime.fromisoformat(data["at"]),
            kind=data["kind"],
            actor=data["actor"],
            subject=data["subject"],
            detail=dict(data["detail"]),
            prev_hash=data["prev_hash"],
            hash=data["hash"],
        )


def timestamp(at: datetime) -> str:
    """A time as it is hashed: UTC, ISO 8601, microseconds (a naive time is taken as UTC)."""
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def _fields(
    seq: int, at: datetime, kind: str, actor: str, subject: str, detail: dict[str, Any], prev_hash: str
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": timestamp(at),
        "kind": kind,
        "actor": actor,
        "subject": subject,
        "detail": detail,
        "prev_hash": prev_hash,
    }


def canonical(
    seq: int, at: datetime, kind: str, actor: str, subject: str, detail: dict[str, Any], prev_hash: str
) -> bytes:
    """The bytes a record's hash is computed over (see the module docstring)."""
    fields = _fields(seq, at, kind, actor, subject, detail, prev_hash)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hash_of(record: AuditRecord) -> str:
    """The hash ``record`` should carry, recomputed from its fields."""
    r = record
    return hashlib.sha256(
        canonical(r.seq, r.at, r.kind, r.actor, r.subject, r.detail, r.prev_hash)
    ).hexdigest()


def seal(entries: Iterable[Entry], seq: int, prev_hash: str) -> list[AuditRecord]:
    """``entries`` chained after the record ``seq`` whose hash is ``prev_hash``."""
    records = []
    for entry in entries:
        seq += 1
        data = canonical(seq, entry.at, entry.kind, entry.actor, entry.subject, entry.detail, prev_hash)
        digest = hashlib.sha256(data).hexdigest()
        records.append(
            AuditRecord(
                seq, entry.at, entry.kind, entry.actor, entry.subject, entry.detail, prev_hash, digest
            )
        )
        prev_hash = digest
    return records


def message_entry(message: NewMessage) -> Entry:
    """The one record of a stored message: its reception and the verdict on it."""
    kind = ACCEPTANCE if message.status == Status.ACCEPTED else REJECTION
    detail = {
        "status": message.status,
        "http_status": message.http_status,
        "sha256": message.sha256,
        "size": message.size,
        "transport": message.transport,
        "format": message.format,
        "message_id": message.message_id,
        "codes": sorted({e.code for e in message.errors}),
    }
    return Entry(kind, message.sender, message.receipt_id, message.received_at, detail)


# ------------------------------------------------------------------ verification


@dataclass(frozen=True, slots=True)
class Finding:
    """The first place where the chain breaks: the record named, the kind of damage, why."""

    seq: int
    problem: str  # changed | removed | inserted | rewritten | anchor
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    count: int
    last_seq: int
    last_hash: str
    finding: Finding | None = None

    @property
    def ok(self) -> bool:
        return self.finding is None


@dataclass(frozen=True, slots=True)
class Anchor:
    """A head kept outside the database: record ``seq`` had hash ``hash``."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``SEQ:HASH``, as ``saisine audit export`` prints it; ValueError otherwise."""
        seq, sep, digest = text.strip().partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64 or not _is_hex(digest):
            raise ValueError(f"an anchor is SEQ:HASH (a number, a colon, 64 hex digits), not {text!r}")
        return cls(int(seq), digest.lower())

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


class ChainCheck:
    """Checks records fed in ``seq`` order, in constant memory; stops at the first break.

    Start after record ``after`` whose hash is ``prev_hash`` (the genesis for a whole chain);
    ``head`` is the stored head (last seq, last hash), ``anchor`` an externally kept head.
    """

    def __init__(
        self,
        after: int = 0,
        prev_hash: str = GENESIS,
        head: tuple[int, str] | None = None,
        anchor: Anchor | None = None,
    ) -> None:
        self.count = 0
        self.last_seq, self.last_hash = after, prev_hash
        self.head, self.anchor = head, anchor
        self.finding: Finding | None = None
        if anchor is not None and anchor.seq < after:
            self.finding = Finding(
                anchor.seq, "anchor", f"record {anchor.seq} (the anchor) comes before this chain"
            )
        elif anchor is not None and anchor.seq == after and prev_hash != anchor.hash:
            self.finding = _anchor_broken(anchor, prev_hash)

    def feed(self, record: AuditRecord) -> bool:
        """Check the next record; False once the chain is broken (``finding`` says where)."""
        if self.finding is None:
            self.finding = self._check(record)
            if self.finding is None:
                self.count += 1
                self.last_seq, self.last_hash = record.seq, record.hash
        return self.finding is None

    def _check(self, r: AuditRecord) -> Finding | None:
        expected = self.last_seq + 1
        if r.seq < expected:
            return Finding(
                r.seq, "inserted", f"record {r.seq} is out of place: it comes after record {self.last_seq}"
            )
        if r.seq > expected:
            missing = f"record {expected}" if r.seq == expected + 1 else f"records {expected} to {r.seq - 1}"
            return Finding(
                expected, "removed", f"{missing} removed: the chain goes from {self.last_seq} to {r.seq}"
            )
        if self.head is not None and r.seq > self.head[0]:
            return Finding(
                r.seq, "inserted", f"record {r.seq} inserted: it is beyond the head (record {self.head[0]})"
            )
        if hash_of(r) != r.hash:
            return _mismatch(r)
        if r.prev_hash != self.last_hash:
            return Finding(
                self.last_seq,
                "rewritten",
                f"record {r.seq} does not follow record {self.last_seq}: its prev_hash "
                f"{r.prev_hash[:12]}… is not the hash of record {self.last_seq} ({self.last_hash[:12]}…): "
                f"record {self.last_seq} was rewritten with a recomputed hash, or records were removed "
                "or inserted between them",
            )
        if self.anchor is not None and r.seq == self.anchor.seq and r.hash != self.anchor.hash:
            return _anchor_broken(self.anchor, r.hash)
        return None

    def finish(self) -> Verdict:
        """The verdict once every record was fed: also checks the head and the anchor."""
        if self.finding is None:
            self.finding = self._check_end()
        return Verdict(self.count, self.last_seq, self.last_hash, self.finding)

    def _check_end(self) -> Finding | None:
        if self.head is not None:
            seq, digest = self.head
            if seq > self.last_seq:
                first = self.last_seq + 1
                missing = f"record {seq}" if first == seq else f"records {first} to {seq}"
                return Finding(
                    first,
                    "removed",
                    f"{missing} removed: the head is record {seq}, the chain ends at {self.last_seq}",
                )
            if digest != self.last_hash:
                return Finding(
                    seq,
                    "rewritten",
                    f"the head's hash is not record {seq}'s: record {seq} was rewritten, or the head",
                )
        if self.anchor is not None and self.anchor.seq > self.last_seq:
            return Finding(
                self.last_seq + 1,
                "anchor",
                f"the anchor names record {self.anchor.seq} but the chain ends at {self.last_seq}: "
                "records were removed",
            )
        return None


def _mismatch(r: AuditRecord) -> Finding:
    """A record whose hash does not match its content: changed, or renumbered around a removal
    or an insertion (its content then hashes right under its former number)."""
    if hash_of(replace(r, seq=r.seq + 1)) == r.hash:
        return Finding(
            r.seq,
            "removed",
            f"record {r.seq} removed: the record now numbered {r.seq} was {r.seq + 1} (renumbered)",
        )
    if r.seq > 1 and hash_of(replace(r, seq=r.seq - 1)) == r.hash:
        return Finding(
            r.seq - 1,
            "inserted",
            f"record {r.seq - 1} inserted: the record now numbered {r.seq} was {r.seq - 1} (renumbered)",
        )
    return Finding(r.seq, "changed", f"record {r.seq} changed: its content does not match its hash")


def _anchor_broken(anchor: Anchor, found: str) -> Finding:
    return Finding(
        anchor.seq,
        "anchor",
        f"record {anchor.seq} is not the one anchored: its hash is {found[:12]}…, the anchor's "
        f"{anchor.hash[:12]}…: the history up to it was rewritten (and its hashes recomputed)",
    )


def verify(
    records: Iterable[AuditRecord],
    head: tuple[int, str] | None = None,
    anchor: Anchor | None = None,
    after: int = 0,
    prev_hash: str = GENESIS,
) -> Verdict:
    """Check a chain given in ``seq`` order (streamed: constant memory)."""
    check = ChainCheck(after, prev_hash, head, anchor)
    for record in records:
        if not check.feed(record):
            break
    return check.finish()


def verify_export(lines: Iterable[str], anchor: Anchor | None = None) -> Verdict:
    """Check an export of ``saisine audit export`` on its own: its records chain from the first
    one's ``prev_hash`` and end at the head of its last line (streamed: constant memory)."""
    check: ChainCheck | None = None
    head: Anchor | None = None
    for line in lines:
        if not line.strip():
            continue
        data = json.loads(line)
        if "head" in data:
            head = Anchor.parse(data["head"])
            continue
        record = AuditRecord.from_json(data)
        if check is None:
            check = ChainCheck(record.seq - 1, record.prev_hash, None, anchor)
        if not check.feed(record):
            break
    if check is not None and check.finding is not None:
        return check.finish()
    if head is None:
        seq = check.last_seq + 1 if check else 0
        return Verdict(
            0, 0, GENESIS, Finding(seq, "removed", "the export has no head line: it was cut short")
        )
    if check is None:  # no record: the export only says where the head was
        check = ChainCheck(head.seq, head.hash, None, anchor)
    check.head = (head.seq, head.hash)
    return check.finish()
