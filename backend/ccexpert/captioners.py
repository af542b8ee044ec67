"""What ``ccexpert describe`` captions with: the model in this process or a ``ccexpert serve`` backend.

Both implement the run loop's captioner contract directly (``ccexpert_changes.core.run_loop.Captioner``, the same
one the plugin's ``chips.BackendCaptioner`` implements): ``caption(items)`` returns one result per item or raises
:class:`~ccexpert_changes.core.run_loop.CaptionError` of kind ``rejected`` (the loop retries pair by pair, so one
bad chip fails alone: the one isolation rule, in the loop), ``fatal`` or ``refused_key``. What describe adds:
``info()``, ``check_access()``, ``payload()`` (PNGs made in the prefetch thread) and ``max_in_flight()``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from ccexpert_changes.core.driver import JSON_OVERHEAD_BYTES, MAX_IN_FLIGHT
from ccexpert_changes.core.run_loop import CaptionError, Item

log = logging.getLogger("ccexpert.describe")


class DescribeError(Exception):
    """The run cannot go on (backend unreachable, wrong key, disk full...); finished tiles are kept for --resume.

    ``summary`` holds the counts up to that point (None when the run stopped before its first chip).
    ``refused_key``: the backend refused the API key (401/403). ``nothing_written``: the output could not be
    created (a full disk...) and nothing of the run is left."""

    def __init__(self, message: str, summary: Any = None, refused_key: bool = False, nothing_written: bool = False):
        super().__init__(message)
        self.summary = summary
        self.refused_key = refused_key
        self.nothing_written = nothing_written


class Captioner:
    """What describe needs from a model: ``info()`` and ``caption(ids, pairs) -> list[result dict | Exception]``."""

    name: str = "in-process"

    def info(self) -> dict:
        raise NotImplementedError

    def check_access(self) -> None:
        """Before the first chip: DescribeError(refused_key=True) when the backend will refuse every request."""

    max_new_tokens: int | None = None  # caption length limit (None: the model's)
    context: str | None = None  # the run's note (``core.context``, checked); sent with every batch when set

    def caption(self, items: Sequence[Item]) -> list[dict | Exception]:
        """The run loop's contract: one result per item (``{"caption", "confidence", "changed"}``), or
        CaptionError (``rejected`` / ``fatal`` / ``refused_key``)."""
        raise NotImplementedError

    def slow_after_s(self, pairs: int) -> float | None:
        """Seconds after which a request of ``pairs`` pairs is slow enough to halve the batch (None: never)."""
        return None

    def max_in_flight(self, info: dict) -> int:
        """Requests worth keeping at the backend at once (one engine in this process: 1)."""
        return 1

    def on_retry(self, callback: Any) -> None:
        """Hand ``callback(core.retry.Waiting)`` to the client, told before each wait for a retry (none in-process)."""

    def payload(self, before: np.ndarray, after: np.ndarray) -> tuple[Any, int]:
        """What ``caption`` gets for one pair, and its bytes in a request (0: no request body). Called in the
        prefetch thread, so encoding costs the loop nothing."""
        return (before, after), 0


class EngineCaptioner(Captioner):
    """The model in this process (no --backend). ``engine`` may be a zero-argument loader, called on first
    use: inputs are checked before the slow model load."""

    def __init__(self, engine):
        self._engine = engine
        self.name = "in-process"

    @property
    def engine(self):
        if callable(self._engine) and not hasattr(self._engine, "caption"):
            self._engine = self._engine()
        return self._engine

    def info(self) -> dict:
        return self.engine.info()

    def caption(self, items: Sequence[Item]) -> list[dict | Exception]:
        try:
            note = {} if self.context is None else {"context": self.context}  # engines before notes take none
            results = self.engine.caption(
                [item.payload for item in items], max_new_tokens=self.max_new_tokens or 64, **note
            )
        except ValueError as exc:  # a pair the model cannot take: the loop retries pair by pair
            raise CaptionError(f"the model refused the pair: {exc}", "rejected") from None
        except (RuntimeError, MemoryError) as exc:  # the model is broken (out of memory...): stop the run
            raise CaptionError(f"the model failed: {exc}", "fatal") from None
        return [{"caption": r.caption, "confidence": r.confidence, "changed": r.changed} for r in results]


class ServiceCaptioner(Captioner):
    """A ``ccexpert serve`` backend through :class:`ccexpert.client.CCExpertClient`."""

    def __init__(self, client):
        self.client = client
        self.name = client.base_url

    def info(self) -> dict:
        from .client import ServiceError

        try:
            return self.client.info()
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise DescribeError(self._refused(exc), refused_key=True) from None
            raise DescribeError(f"backend {self.client.base_url} unreachable or incompatible: {exc}") from None

    def check_access(self) -> None:
        """``GET /v1/auth/check``; an older backend without it (404) leaves the check to the first batch."""
        from .client import ServiceError

        try:
            answer = self.client.check_key()
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise DescribeError(self._refused(exc), refused_key=True) from None
            raise DescribeError(f"backend {self.client.base_url}: cannot check the API key: {exc}") from None
        if answer is None:
            log.info(
                "backend %s has no /v1/auth/check (older version): the first batch checks the key", self.client.base_url
            )
        else:
            log.info(
                "backend %s accepts the API key%s",
                self.client.base_url,
                f" ({answer['label']})" if answer.get("label") else "",
            )

    def slow_after_s(self, pairs: int) -> float | None:
        return float(self.client.timeout[1])

    def on_retry(self, callback: Any) -> None:
        self.client.on_retry = callback

    def max_in_flight(self, info: dict) -> int:
        """The capacity the backend advertises (replicas x requests each), at most ``MAX_IN_FLIGHT``."""
        try:
            return max(1, min(MAX_IN_FLIGHT, int(info.get("max_in_flight") or 1)))
        except (TypeError, ValueError):
            return 1

    def payload(self, before: np.ndarray, after: np.ndarray) -> tuple[Any, int]:
        """Two PNGs, and their size as base64 in the request: the run loop splits a batch to stay under the
        backend's ``max_body_bytes``."""
        from .client import encode_png

        pngs = (encode_png(before), encode_png(after))
        return pngs, sum(4 * ((len(png) + 2) // 3) for png in pngs) + JSON_OVERHEAD_BYTES

    def _refused(self, exc) -> str:
        return f"backend {self.client.base_url} refused the API key ({exc}): check --api-key-file or CCEXPERT_API_KEY"

    def caption(self, items: Sequence[Item]) -> list[dict | Exception]:
        from .client import ChipPair, ServiceError

        pairs = [ChipPair(item.chip.tile_id, *item.payload) for item in items]
        try:
            note = {} if self.context is None else {"context": self.context}  # clients before notes take none
            results = self.client.caption(pairs, max_new_tokens=self.max_new_tokens, **note)
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise CaptionError(self._refused(exc), "refused_key") from None
            if exc.status is not None and 400 <= exc.status < 500 and (exc.pair_id or exc.status in (413, 422)):
                # a pair the backend refuses, or a request too large: pair by pair, one bad chip fails alone
                raise CaptionError(f"backend {self.client.base_url}: {exc}", "rejected") from None
            raise CaptionError(f"backend {self.client.base_url}: {exc}", "fatal") from None
        by_id = {r.get("id"): r for r in results}
        return [by_id.get(pair.id) or CaptionError(f"no result for {pair.id}", "rejected") for pair in pairs]
