"""In-memory fakes of the core's ports, kept as real code for unit tests."""

from __future__ import annotations

from dataclasses import replace

from gateway.ports import DuplicateAccepted, Event, NewMessage, Receipt, Status


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
