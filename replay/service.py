"""Replaying messages: preview, start, pause, resume, cancel, and the runner that carries
replays out at their rate limit (see :mod:`replay.model` for the words)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.intake import Checker
from gateway.ports import Clock
from gateway.store.repository import SqlStore
from replay.model import Preview, ReplayItem, ReplaySummary, Selection


class ReplayService:
    """Everything operators do with replays; the API, the CLI and the console call this."""

    def __init__(self, store: SqlStore, checker: Checker, clock: Clock, rate_per_second: float) -> None:
        self.store = store
        self.engine = store.engine
        self.checker = checker
        self.clock = clock
        self.rate_per_second = rate_per_second

    def preview(self, mode: str, selection: Selection, limit: int = 1000) -> Preview:
        """What a replay of ``selection`` in ``mode`` would do to each message; changes nothing.
        Raises NothingSelected, ReplayError (unknown mode, both ids and filters)."""
        raise NotImplementedError

    def start(
        self,
        mode: str,
        selection: Selection,
        reason: str,
        requested_by: str,
        rate_per_second: float | None = None,
    ) -> ReplaySummary:
        """Record a replay and its messages (chosen now, in procedure order) and set it running;
        the runner carries it out. Raises ReasonRequired, NothingSelected, ReplayError."""
        raise NotImplementedError

    def get(self, replay_id: str) -> ReplaySummary:
        """A replay with its progress. Raises ReplayUnknown."""
        raise NotImplementedError

    def items(self, replay_id: str, limit: int = 500, offset: int = 0) -> list[ReplayItem]:
        """A replay's messages in the order it takes them, with what came of each."""
        raise NotImplementedError

    def history(self, limit: int = 50) -> list[ReplaySummary]:
        """Replays, newest first."""
        raise NotImplementedError

    def pause(self, replay_id: str, by: str) -> ReplaySummary:
        raise NotImplementedError

    def resume(self, replay_id: str, by: str) -> ReplaySummary:
        raise NotImplementedError

    def cancel(self, replay_id: str, by: str) -> ReplaySummary:
        raise NotImplementedError

    def run(
        self,
        replay_id: str,
        owner: str,
        on_progress: Callable[[ReplaySummary], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ReplaySummary:
        """Carry one replay out in this thread, at its rate, until no item is left, it is paused
        or cancelled, or ``should_stop()``; used by the CLI. Returns the replay as it stands."""
        raise NotImplementedError

    def step(self, owner: str, now: datetime) -> int:
        """Apply the items due now of every running replay (the runner's loop calls this);
        returns how many were applied."""
        raise NotImplementedError
