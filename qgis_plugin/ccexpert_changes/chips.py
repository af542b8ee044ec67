"""The plugin's adapters to the run loop (``core.run_loop``): chips read and encoded with GDAL, captioned through
the QGIS network stack. The loop itself (batches, requests in flight, grid order, retries) is shared with
``ccexpert describe``."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from .backend_client import BackendClient, BackendError
from .core.driver import JSON_OVERHEAD_BYTES
from .core.grid import Chip
from .core.run_loop import SEND, CaptionError, Item
from .reader import PairReader, RasterInputError, encode_png


class ChipEncoder:
    """``prepare(chip)``: one windowed read per date, the nodata rule, two base64 PNGs (runs in the prefetch
    thread, the only user of the GDAL datasets while the loop runs)."""

    def __init__(self, reader: PairReader, max_nodata: float):
        self.reader, self.max_nodata = reader, max_nodata

    def __call__(self, chip: Chip) -> Item:
        try:
            images = self.reader.read_chip(chip)
        except RasterInputError as exc:  # one unreadable block fails its tile, not the run
            return Item(chip, "error", error=str(exc))
        nb, na = images.nodata_before, images.nodata_after
        if max(nb, na) > self.max_nodata:
            return Item(
                chip,
                "skipped_nodata",
                nodata_before=nb,
                nodata_after=na,
                error=f"nodata {max(nb, na):.0%} over max {self.max_nodata:.0%}",
            )
        pair = {
            "id": chip.tile_id,
            "before": base64.b64encode(encode_png(images.before)).decode("ascii"),
            "after": base64.b64encode(encode_png(images.after)).decode("ascii"),
        }
        size = len(pair["before"]) + len(pair["after"]) + JSON_OVERHEAD_BYTES
        return Item(chip, SEND, payload=pair, size=size, nodata_before=nb, nodata_after=na)


class BackendCaptioner:
    """``POST /v1/captions`` through :class:`BackendClient`; its errors in the loop's words. A key refused before
    anything was captioned (an older backend without ``/v1/auth/check``) stops the run with nothing kept."""

    def __init__(self, client: BackendClient, context: str | None = None):
        self.client = client
        self.context = context  # the run's note (checked), sent with every request when set
        self.answered = 0

    def caption(self, items: Sequence[Item]) -> list[dict | Exception]:
        try:
            model, results = self.client.captions([item.payload for item in items], context=self.context)
        except BackendError as exc:
            if not exc.fatal:
                raise CaptionError(str(exc), "rejected") from None
            if exc.kind == "auth" and self.answered == 0:
                raise CaptionError(str(exc), "refused_key") from None
            raise CaptionError(str(exc), "canceled" if exc.kind == "canceled" else "fatal") from None
        self.answered += len(results)
        return [dict(result, model=model) if model else result for result in results]

    def slow_after_s(self, pairs: int) -> float:
        """The request's effective timeout (QGIS caps transfer timeouts)."""
        return self.client.effective_timeout_s(self.client.timeout_s + self.client.per_pair_timeout_s * pairs)
