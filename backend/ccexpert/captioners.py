"""What ``ccexpert describe`` captions with: the model in this process or a ``ccexpert serve`` backend, behind one
small interface, and its adapter to the run loop (``ccexpert_changes.core.run_loop``)."""

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

    def caption(
        self, ids: Sequence[str], pairs: Sequence[tuple[np.ndarray, np.ndarray]], max_new_tokens: int | None
    ) -> list[dict | Exception]:
        raise NotImplementedError

    def slow_after_s(self, pairs: int) -> float | None:
        """Seconds after which a request of ``pairs`` pairs is slow enough to halve the batch (None: never)."""
        return None

    def max_in_flight(self, info: dict) -> int:
        """Requests worth keeping at the backend at once (one engine in this process: 1)."""
        return 1

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

    def caption(self, ids, pairs, max_new_tokens):
        try:
            results = self.engine.caption(list(pairs), max_new_tokens=max_new_tokens or 64)
        except ValueError as exc:  # a bad pair: caption one by one to isolate it
            if len(pairs) == 1:
                return [exc]
            return [self.caption([i], [p], max_new_tokens)[0] for i, p in zip(ids, pairs, strict=True)]
        return [{"caption": r.caption, "confidence": r.confidence, "changed": r.changed} for r in results]


class ServiceCaptioner(Captioner):
    """A ``ccexpert serve`` backend through :class:`ccexpert.client.CCExpertClient`."""

    def __init__(self, client):
        from .client import ChipPair

        self.client = client
        self.name = client.base_url
        self._pair = ChipPair

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

    def caption(self, ids, pairs, max_new_tokens):
        from .client import ServiceError

        items = [self._pair(i, b, a) for i, (b, a) in zip(ids, pairs, strict=True)]
        out: dict[str, dict | Exception] = {}
        while items:
            try:
                for r in self.client.caption(items, max_new_tokens=max_new_tokens):
                    out[r["id"]] = r
                items = []
            except ServiceError as exc:
                if exc.status in (401, 403):
                    raise DescribeError(self._refused(exc), refused_key=True) from None
                if exc.status is not None and 400 <= exc.status < 500 and exc.pair_id in {p.id for p in items}:
                    out[exc.pair_id] = exc  # this chip was refused: record it, send the others again
                    items = [p for p in items if p.id != exc.pair_id]
                    continue
                raise DescribeError(f"backend {self.client.base_url}: {exc}") from None
        return [out[i] for i in ids]


class LoopCaptioner:
    """A describe :class:`Captioner` as the run loop's captioner (``ccexpert_changes.core.run_loop``)."""

    def __init__(self, captioner: Captioner, max_new_tokens: int | None):
        self.captioner, self.max_new_tokens = captioner, max_new_tokens

    def caption(self, items: Sequence[Item]) -> list[dict | Exception]:
        try:
            return self.captioner.caption(
                [i.chip.tile_id for i in items], [i.payload for i in items], self.max_new_tokens
            )
        except DescribeError as exc:
            raise CaptionError(str(exc), "refused_key" if exc.refused_key else "fatal") from None

    def slow_after_s(self, pairs: int) -> float | None:
        return self.captioner.slow_after_s(pairs)
