"""In-memory fakes of the core's ports, kept as real code for unit tests."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

from gateway.ports import DeliveryTask, DuplicateAccepted, Event, NewMessage, Receipt, Registration, Status


class MemoryStore:
    """A MessageStore in a dict: same contract as gateway.store.repository.SqlStore."""

    def __init__(self) -> None:
        self.messages: dict[str, NewMessage] = {}
        self.events: dict[str, list[Event]] = {}

    def _receipt(self, message: NewMessage) -> Receipt:
        return Receipt(
            receipt_id=message.receipt_id,
            status=message.status,
            received_at=message.received_at,
            sha256=message.sha256,
            message_id=message.message_id,
            format=message.format,
            errors=list(message.errors),
            warnings=list(message.warnings),
            history=list(self.events[message.receipt_id]),
        )

    def save(self, message: NewMessage) -> Receipt:
        accepted = message.status == Status.ACCEPTED and message.message_id
        if accepted and self.find_accepted(message.sender, message.message_id or ""):
            raise DuplicateAccepted(message.message_id)
        self.messages[message.receipt_id] = replace(message)
        self.events[message.receipt_id] = list(message.events)
        return self._receipt(message)

    def find_accepted(self, sender: str, message_id: str) -> Receipt | None:
        for message in self.messages.values():
            if (message.sender, message.message_id, message.status) == (
                sender,
                message_id,
                Status.ACCEPTED,
            ):
                return self._receipt(message)
        return None

    def add_event(self, receipt_id: str, event: Event) -> None:
        self.events[receipt_id].append(event)

    def receipt(self, receipt_id: str) -> Receipt | None:
        message = self.messages.get(receipt_id)
        return self._receipt(message) if message else None

    def ping(self) -> None:
        return None


class FakeRegistry:
    """An in-process court registry: idempotent by key, scripted failures, every call recorded."""

    endpoint = "fake://registry"

    def __init__(self) -> None:
        self.calls: list[DeliveryTask] = []
        self.script: list[Exception] = []  # raised by the next calls, in order
        self.numbers: dict[str, str] = {}
        self.lock = threading.Lock()

    def register(self, task: DeliveryTask) -> Registration:
        with self.lock:
            self.calls.append(task)
            if self.script:
                raise self.script.pop(0)
            if task.kind == "complement":
                assert task.numero_parquet, "a complément is sent with its affaire's numéro parquet"
            repeat = task.message_id in self.numbers
            if not repeat:
                tribunal = task.affaire["tribunal_code"]
                self.numbers[task.message_id] = (
                    task.numero_parquet or f"{tribunal}-2026-{len(self.numbers) + 1:07d}"
                )
            return Registration(self.numbers[task.message_id], datetime.now(UTC), repeat)

    def keys(self) -> list[str]:
        return [call.message_id for call in self.calls]
