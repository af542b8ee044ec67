"""The run around the chip loop, once for the QGIS plugin and ``ccexpert describe`` (Qt-free, stdlib only).

Both front ends used to work out the batch size, the requests in flight, the record fields and the keep/discard rule
each in their own way, and ``describe`` forgot the server's limits (a ``--batch-size`` above its ``max_batch`` got a
422 that stopped the run). Here is the one place for it:

- :func:`settings_from_info`: what the user asked, clamped to what the backend's ``/v1/info`` advertises: at most
  ``max_batch`` pairs and ``max_body_bytes`` per request, at most :data:`MAX_IN_FLIGHT` requests at once;
- :func:`keep_output`: what a run that stopped before captioning keeps, decided once;
- :func:`drive`: the run itself: the loop into the output, the keep/discard rule applied on every way out, and
  the outcome (:class:`RunResult`) for the front end to word (a CLI line, a Processing message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from .context import MAX_CONTEXT_CHARS
from .grid import Chip
from .run_loop import Captioner, Item, OutputWriter, RunAborted, RunLoop, RunSettings, RunStats

MAX_IN_FLIGHT = 16  # requests at the backend at once, whatever a backend advertises or a user asks
DEFAULT_BATCH = 8  # pairs per request when neither the user nor the backend says
JSON_OVERHEAD_BYTES = 256  # per pair in a request body: id, keys, quotes (the images are counted apart)
# per request body: ``{"pairs": [...], "max_new_tokens": ...}`` and a margin, plus the longest context note as JSON
# writes it (12 bytes a character: a ``\uXXXX`` surrogate pair), so a note never pushes a request over max_body_bytes
ENVELOPE_BYTES = 1024 + 12 * MAX_CONTEXT_CHARS + len(', "context": ""')


def _int(value: Any, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def settings_from_info(
    info: Mapping[str, Any],
    batch: int | None,
    in_flight: int | None,
    common: Mapping[str, Any] | None = None,
) -> RunSettings:
    """Pairs per request, bytes per request and requests in flight for a backend that advertises ``info``.

    ``batch``/``in_flight`` are what the user asked (None or 0: the backend's default). The batch never exceeds the
    backend's ``max_batch`` and a request body never its ``max_body_bytes`` (the loop splits a batch by bytes), so
    a run is never refused for asking too much at once."""
    max_batch = _int(info.get("max_batch"), 0)
    size = _int(batch, 0) or DEFAULT_BATCH
    if max_batch:
        size = min(size, max_batch)
    body = _int(info.get("max_body_bytes"), 0)
    budget = max(1, body - ENVELOPE_BYTES) if body else 0
    flight = _int(in_flight, 0) or _int(info.get("max_in_flight"), 1)
    return RunSettings(
        batch_size=max(1, size),
        max_request_bytes=budget,
        in_flight=max(1, min(MAX_IN_FLIGHT, flight)),
        common=dict(common or {}),
    )


def model_label(info: Mapping[str, Any]) -> str:
    """``"ccexpert-demo 0.3"``: the model as the run metadata and the layer name it."""
    return " ".join(str(info.get(k, "")) for k in ("model_name", "model_version")).strip()


@dataclass(kw_only=True)
class RunOptions:
    """What the user sets for a run, the same for both front ends: describe's ``DescribeOptions`` and the plugin's
    ``planning.DescribeParameters`` extend it (their inputs: paths or layers). None means "the model's / backend's"."""

    chip_size: int | None = None  # grid chip size in before pixels; None: the model's
    overlap: int = 0
    max_nodata: float = 0.5
    batch_size: int | None = None  # pairs per request; None: DEFAULT_BATCH, capped at the backend's max_batch
    in_flight: int | None = None  # requests at once; None: the backend's max_in_flight
    max_chips: int = 100_000
    resume: bool = False
    force: bool = False  # with resume: append even when the output's fingerprint differs or is missing
    context_note: str | None = None  # the run's note (``core.context``: checked, stripped); sent with each request


@dataclass
class RunPlan:
    """What a run captions: the chips in grid order and how many there are, and the fields every record carries."""

    chips: Iterable[Chip]
    total: int
    common: dict[str, Any] = field(default_factory=dict)


def keep_output(completed: bool, refused_key: bool, replaces: bool, errors: int, not_attempted: int) -> bool:
    """The keep/discard rule of a run that has not captioned a tile yet (a staged output not promoted): a refused
    key keeps nothing; a run that would replace a previous output keeps its own only when it ended with every tile
    done and none failed, so a run that failed before captioning leaves the previous output as it was."""
    if refused_key:
        return False
    if not replaces:
        return True
    return completed and errors == 0 and not_attempted == 0


@dataclass
class Hooks:
    """What a front end hears during a run (all optional): progress after each written batch (and during an
    outage), each failed tile, changes of plan, and the cancel flag it polls. ``executor(n)``: where requests in
    flight run (the plugin passes QThreads); ``on_loop(loop)``: the loop before it runs (a client's ``on_retry``)."""

    on_progress: Callable[[RunStats], None] | None = None
    on_tile_error: Callable[[str, str], None] | None = None
    on_notice: Callable[[str], None] | None = None
    is_canceled: Callable[[], bool] | None = None
    executor: Callable[[int], Executor] | None = None
    on_loop: Callable[[RunLoop], None] | None = None


@dataclass
class RunResult:
    """How a run ended: its counts, why it stopped early (None: it went through), and whether the output holds this
    run (False: a run that would replace an output captioned nothing, or a refused key; the old output stays)."""

    stats: RunStats
    aborted: RunAborted | None
    held: bool


def drive(
    plan: RunPlan,
    prepare: Callable[[Chip], Item],
    captioner: Captioner,
    writer: OutputWriter,
    settings: RunSettings,
    hooks: Hooks | None = None,
) -> RunResult:
    """Run ``plan``'s chips into ``writer`` and apply :func:`keep_output` once, on every way out (an exception that
    is not a :class:`RunAborted`, Ctrl-C included, still finishes the output before it propagates)."""
    hooks = hooks or Hooks()
    settings.common = {**plan.common, **settings.common}
    loop = RunLoop(
        prepare,
        captioner,
        writer,
        settings,
        on_progress=hooks.on_progress,
        on_tile_error=hooks.on_tile_error,
        on_notice=hooks.on_notice,
        is_canceled=hooks.is_canceled,
        executor=hooks.executor,
    )
    if hooks.on_loop is not None:
        hooks.on_loop(loop)
    aborted: RunAborted | None = None
    completed = False
    held = False
    try:
        loop.run(plan.chips, plan.total)
        completed = True
    except RunAborted as exc:
        aborted = exc
    finally:
        stats = loop.stats
        refused = aborted is not None and aborted.kind == "refused_key"
        if refused:
            writer.discard()
        held = writer.finish(keep_output(completed, refused, writer.replaces, stats.errors, stats.not_attempted))
    return RunResult(stats, aborted, held and not (aborted is not None and aborted.kind == "refused_key"))


__all__ = [
    "Hooks",
    "RunResult",
    "drive",
    "DEFAULT_BATCH",
    "ENVELOPE_BYTES",
    "JSON_OVERHEAD_BYTES",
    "MAX_IN_FLIGHT",
    "RunOptions",
    "RunPlan",
    "keep_output",
    "model_label",
    "settings_from_info",
]
