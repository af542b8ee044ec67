"""Scale-out serving on Ray Serve: the same HTTP API as ``ccexpert serve``, many model replicas, many machines.

Two deployments in one Serve application (``APP_NAME``):

- ``CCExpertAPI`` (the ingress, one replica): our FastAPI app, built by ``ccexpert.service.create_app`` in the
  replica, so routes, API keys, limits, the error envelope, ``/openapi.json``, ``/docs`` and ``/metrics`` are the
  same code as ``ccexpert serve``. Its engine is a :class:`ReplicaEngine`: the engine interface (``caption``,
  ``info``) in front of the model deployment's handle. The service's dynamic batcher (round-robin across keys,
  idempotency cache, 429 on overload) forms the batches; the ingress runs one batcher worker per model replica
  (``workers``), so several batches are in flight at once, and by default (``batching="serve"``) sends each pair
  as its own call so that a batch is spread over every idle replica.
- ``CaptionModel`` (``replicas`` fixed, or autoscaled on ongoing requests): one engine per replica
  (``num_gpus=1`` when the device is a GPU). The constructor loads the model and captions the built-in sample pair
  with the service's own start-up check (``ccexpert.service.state.check_captions``); a replica that cannot caption
  raises there and is never routed to. ``@serve.batch`` merges the pair calls a replica gets into engine batches of
  up to ``device_batch``. Serve health-checks replicas and replaces a dead one.

A replica that dies with a batch in flight: :class:`ReplicaEngine` resends the batch (captioning is idempotent) to
another replica, or to the replacement, within ``retry_budget_s``; past it the pairs fail and the request is answered
503 ``unavailable`` with ``Retry-After``, which clients retry. Never a wrong or missing result: a batch's
results come back whole, from one engine call, or not at all.

Entry points: :func:`run` (``ccexpert serve --ray``), :func:`app_builder` (``serve run deploy/serve.yaml``,
``serve run ccexpert.ray_serve:app_builder model=ckpt/ replicas=2``), :func:`build_app` (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import ray
    from ray import serve
    from ray.exceptions import RayActorError, RayTaskError
except ImportError as exc:  # pragma: no cover - the [ray] extra
    raise ImportError("ccexpert.ray_serve needs Ray Serve: pip install -e '.[ray]'") from exc

try:  # a replica that is starting, restarting or unreachable; older Rays have only RayActorError
    from ray.exceptions import ActorUnavailableError
except ImportError:  # pragma: no cover
    ActorUnavailableError = RayActorError

from .engine_api import EngineInfo
from .service import create_app
from .service.settings import Settings, load_settings
from .service.state import check_captions

log = logging.getLogger("ccexpert.ray_serve")

APP_NAME = "ccexpert"
MODEL_DEPLOYMENT = "CaptionModel"
INGRESS_DEPLOYMENT = "CCExpertAPI"
BATCHING_MODES = ("ingress", "serve")
DEFAULT_RETRY_BUDGET_S = 60.0


class ReplicasUnavailable(RuntimeError):
    """No model replica answered within the retry budget (all dead, restarting or hung)."""

    retry_after = 5.0


def parse_autoscale(text: str | None) -> tuple[int, int] | None:
    """``"MIN:MAX"`` -> (min, max) replicas; ValueError on anything else."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        low, high = text
    else:
        parts = str(text).split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"autoscale must be MIN:MAX replicas (e.g. 1:4), got {text!r}")
        low, high = (int(p) for p in parts)
    if not 0 <= int(low) <= int(high) or int(high) < 1:
        raise ValueError(f"autoscale needs 0 <= MIN <= MAX and MAX >= 1, got {low}:{high}")
    return int(low), int(high)


# -- the model replica -------------------------------------------------------------------------------------------------


def _load_engine(
    model: str | None,
    device: str,
    dtype: str,
    device_batch: int,
    engine_factory: str | None,
    engine_kwargs: Mapping[str, Any] | None,
):
    if engine_factory:  # "package.module:callable": a stand-in engine (tests, benchmarks) or a custom one
        module_name, _, attr = engine_factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        return factory(**dict(engine_kwargs or {}))
    from .engine import CaptionEngine

    return CaptionEngine.from_pretrained(model, device=device, dtype=dtype, max_batch=device_batch)


@serve.deployment(
    name=MODEL_DEPLOYMENT,
    max_ongoing_requests=1,  # options() per batching mode
    health_check_period_s=10,
    health_check_timeout_s=30,
    graceful_shutdown_timeout_s=30,
)
class CaptionModel:
    """One engine per replica. Ready only once the sample pair is captioned (else the constructor raises)."""

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        device_batch: int = 8,
        max_new_tokens: int = 64,
        max_wait_ms: float = 10.0,
        engine_factory: str | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
    ):
        self.engine = _load_engine(model, device, dtype, device_batch, engine_factory, engine_kwargs)
        self._info = dict(self.engine.info())
        # readiness = the warm-up caption, with the very check `ccexpert serve` runs before it reports ready
        check_captions(self.engine, self._info, max_new_tokens)
        self._lock = threading.Lock()  # one forward pass at a time on this replica's device
        self.batches: list[int] = []
        self._batched.set_max_batch_size(device_batch)
        self._batched.set_batch_wait_timeout_s(max_wait_ms / 1000.0)
        log.info("replica %d ready: %s", os.getpid(), self._info)

    def _run(self, pairs: list, max_new_tokens: int) -> list:
        with self._lock:
            results = list(self.engine.caption(pairs, max_new_tokens=max_new_tokens))
            self.batches.append(len(pairs))
        if len(results) != len(pairs):
            raise RuntimeError(f"engine returned {len(results)} results for {len(pairs)} pairs")
        return results

    async def caption(self, pairs: list, max_new_tokens: int = 64) -> list:
        """A whole batch (``batching="ingress"``: the service's batcher already merged clients)."""
        return await asyncio.to_thread(self._run, list(pairs), max_new_tokens)

    async def caption_one(self, pair: tuple, max_new_tokens: int = 64):
        """One pair (``batching="serve"``): ``@serve.batch`` merges concurrent calls into one engine batch."""
        return await self._batched((pair, max_new_tokens))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _batched(self, items: list[tuple[tuple, int]]) -> list:
        out: list = [None] * len(items)
        for tokens in dict.fromkeys(t for _, t in items):  # one engine call per caption length, in order
            index = [i for i, (_, t) in enumerate(items) if t == tokens]
            results = await asyncio.to_thread(self._run, [items[i][0] for i in index], tokens)
            for i, result in zip(index, results, strict=True):
                out[i] = result
        return out

    def info(self) -> dict:
        return dict(self._info)

    def pid(self) -> int:
        return os.getpid()

    def batch_sizes(self) -> list[int]:
        return list(self.batches)

    def check_health(self) -> None:
        if getattr(self, "engine", None) is None:
            raise RuntimeError("no engine")


# -- the ingress's engine: a proxy to the model replicas ------------------------------------------------------------


class ReplicaEngine:
    """The engine interface in front of ``CaptionModel``'s handle. Called from the service's batcher threads (never
    from an event loop). A batch whose replica died is resent, to whichever replica Serve routes it, until
    ``retry_budget_s``; a replica's own error (a pair the model cannot caption) is raised as the engine's error."""

    def __init__(
        self,
        handle,
        batching: str = "serve",
        retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
        call_timeout_s: float = 240.0,
    ):
        if batching not in BATCHING_MODES:
            raise ValueError(f"batching must be one of {BATCHING_MODES}, got {batching!r}")
        self.handle = handle
        self.batching = batching
        self.retry_budget_s = retry_budget_s
        self.call_timeout_s = call_timeout_s
        self.resent = 0  # batches resent after a replica died (tests, logs)
        self.parallelism = 1  # batches worth running at once (one per replica); read by the service when it can
        self._info: EngineInfo | None = None
        self._down_until = 0.0

    def info(self) -> EngineInfo:
        """The replicas' engine info (a plain dict on its way between processes), typed."""
        if self._info is None:
            self._info = EngineInfo.of(self._call(lambda: [self.handle.info.remote()])[0])
        return self._info

    def caption(self, pairs: Sequence[tuple[Any, Any]], max_new_tokens: int = 64) -> list:
        pairs = list(pairs)
        if self.batching == "ingress":
            return self._call(lambda: [self.handle.caption.remote(pairs, max_new_tokens)])[0]
        return self._call(lambda: [self.handle.caption_one.remote(p, max_new_tokens) for p in pairs])

    def _call(self, send) -> list:
        if time.monotonic() < self._down_until:  # the budget was just spent: fail fast instead of per pair again
            raise ReplicasUnavailable("no caption replica is available; retry later")
        deadline = time.monotonic() + self.retry_budget_s
        attempt = 0
        while True:
            try:
                responses = send()
                return [r.result(timeout_s=self.call_timeout_s) for r in responses]
            except RayTaskError as exc:  # the replica ran and raised: the engine's own error, not a dead replica
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, Exception) else RuntimeError("caption replica failed")) from None
            except (RayActorError, ActorUnavailableError) as exc:
                attempt += 1
                delay = min(2.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.0)
                if time.monotonic() + delay > deadline:
                    self._down_until = time.monotonic() + 5.0
                    log.error("no caption replica answered within %.0f s (%s)", self.retry_budget_s, type(exc).__name__)
                    raise ReplicasUnavailable("no caption replica is available; retry later") from None
                self.resent += 1
                log.warning("caption replica lost (%s); resending the batch in %.2f s", type(exc).__name__, delay)
                time.sleep(delay)
            except TimeoutError:
                raise ReplicasUnavailable(f"caption replica did not answer within {self.call_timeout_s:g} s") from None


# -- the ingress -------------------------------------------------------------------------------------------------------


@serve.deployment(name=INGRESS_DEPLOYMENT, max_ongoing_requests=256, health_check_period_s=10)
@serve.ingress()
class CCExpertAPI:
    """``create_app(settings, ReplicaEngine(handle))``: the service, unchanged, in front of the model replicas.

    The API keys file is read where the application is built (the head node) and handed over as text; the replica
    writes it to a private temporary file, so workers need no copy of it."""

    def __init__(
        self,
        model_handle,
        settings: dict,
        keys_text: str | None = None,
        workers: int = 1,
        batching: str = "serve",
        retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
    ):
        values = dict(settings)
        if keys_text is not None:
            fd, path = tempfile.mkstemp(prefix="ccexpert-keys-", suffix=".txt")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(keys_text)
            os.chmod(path, 0o600)
            values["api_keys_file"] = path
        self.settings = Settings(**values)
        self.failure: str | None = None
        self.engine = ReplicaEngine(
            model_handle,
            batching,
            retry_budget_s=min(retry_budget_s, self.settings.request_timeout_s),
            call_timeout_s=self.settings.request_timeout_s,
        )
        self.engine.parallelism = workers
        self.service_app = create_app(self.settings, self.engine, on_failure=self._failed)

    def __serve_build_asgi_app__(self):
        return self.service_app

    def _failed(self, reason: str) -> None:
        self.failure = reason

    def check_health(self) -> None:
        if self.failure is not None:  # the start-up check failed through the replicas: let Serve restart us
            raise RuntimeError(self.failure)

    def resent_batches(self) -> int:
        return self.engine.resent


# -- building and running ----------------------------------------------------------------------------------------------


def build_app(
    settings: Settings,
    replicas: int | None = None,
    autoscale: tuple[int, int] | str | None = None,
    *,
    batching: str = "serve",
    num_gpus: float | None = None,
    num_cpus: float = 1.0,
    engine_factory: str | None = None,
    engine_kwargs: Mapping[str, Any] | None = None,
    retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
):
    """The Serve application (``serve.run(build_app(...), name=APP_NAME, route_prefix="/")``).

    ``replicas``: a fixed number of model replicas (default 1); ``autoscale``: (MIN, MAX) or "MIN:MAX", scaled on
    ongoing requests per replica. ``num_gpus``: per replica (default 1 when ``settings.device`` is a CUDA device,
    else 0: CPU replicas take ``num_cpus``). ``batching``: "serve" (the default: the ingress sends each pair of the
    service's batch as its own call, spread over the replicas, and ``@serve.batch`` in each replica merges the calls
    it gets into one engine batch; 1.2x the pairs/s of "ingress" with 2 replicas in bench/bench_scaleout.py, as a
    batch is shared by every idle replica) or "ingress" (the service's batch goes whole to one replica, which runs
    one batch at a time). ``engine_factory``: "module:callable" making a stand-in engine in each replica instead
    of loading ``settings.model``.
    """
    if batching not in BATCHING_MODES:
        raise ValueError(f"batching must be one of {BATCHING_MODES}, got {batching!r}")
    if replicas is not None and autoscale is not None:
        raise ValueError("give replicas or autoscale, not both")
    if replicas is not None and replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    scale = parse_autoscale(autoscale) if autoscale is not None else None
    create_app(settings, engine=object())  # the service's own checks (keys file mode, bind without keys) here
    keys_text = Path(settings.api_keys_file).read_text(encoding="utf-8") if settings.api_keys_file else None
    if num_gpus is None:
        num_gpus = 1.0 if str(settings.device).startswith("cuda") else 0.0
    actor_options: dict[str, Any] = {"num_gpus": num_gpus} if num_gpus else {"num_cpus": num_cpus}
    if num_gpus:
        actor_options["num_cpus"] = num_cpus
    per_replica = 1 if batching == "ingress" else 2 * settings.device_batch
    options: dict[str, Any] = {"ray_actor_options": actor_options, "max_ongoing_requests": per_replica}
    if scale is not None:
        low, high = scale
        options["autoscaling_config"] = {
            "min_replicas": low,
            "initial_replicas": max(low, 1),
            "max_replicas": high,
            # a replica running a full batch is "full": ongoing calls are batches ("ingress") or pairs ("serve")
            "target_ongoing_requests": 1 if batching == "ingress" else settings.device_batch,
            "upscale_delay_s": 5,
            "downscale_delay_s": 60,
        }
        workers = high
    else:
        options["num_replicas"] = replicas or 1
        workers = replicas or 1
    model = CaptionModel.options(**options).bind(
        model=settings.model,
        device=settings.device,
        dtype=settings.dtype,
        device_batch=settings.device_batch,
        max_new_tokens=settings.max_new_tokens,
        max_wait_ms=settings.max_wait_ms,
        engine_factory=engine_factory,
        engine_kwargs=dict(engine_kwargs or {}),
    )
    settings_json = settings.model_dump(mode="json")
    settings_json["api_keys_file"] = None
    # the ingress reserves no logical CPU (as Serve's own HTTP proxy): it decodes, batches and waits, and must always
    # be schedulable, even when the model replicas take every CPU of the node (2 replicas on a 2-core machine)
    return CCExpertAPI.options(
        max_ongoing_requests=2 * settings.max_concurrency + 16, ray_actor_options={"num_cpus": 0}
    ).bind(model, settings_json, keys_text, workers=workers, batching=batching, retry_budget_s=retry_budget_s)


def app_builder(args: Mapping[str, Any]):
    """``serve run ccexpert.ray_serve:app_builder model=ckpt/ replicas=2`` or ``deploy/serve.yaml``'s ``args``.

    Keys: any ``ccexpert serve`` setting (``model``, ``device``, ``api_keys_file``, ``max_batch``, ...; ``config``:
    a serve.toml; ``CCEXPERT_*`` environment variables apply as for ``ccexpert serve``), plus ``replicas``,
    ``autoscale`` ("MIN:MAX"), ``batching``, ``num_gpus``, ``num_cpus``, ``retry_budget_s``. ``host``/``port``
    must match the YAML's ``http_options`` (they decide whether API keys are required)."""
    args = {k: v for k, v in dict(args).items() if v is not None}
    extra = {
        name: args.pop(name)
        for name in (
            "replicas",
            "autoscale",
            "batching",
            "num_gpus",
            "num_cpus",
            "retry_budget_s",
            "engine_factory",
            "engine_kwargs",
        )
        if name in args
    }
    config = args.pop("config", None)
    settings = load_settings(config, overrides=args)
    kwargs: dict[str, Any] = {}
    for name, cast in (
        ("batching", str),
        ("num_gpus", float),
        ("num_cpus", float),
        ("retry_budget_s", float),
        ("engine_factory", str),
    ):
        if name in extra:
            kwargs[name] = cast(extra[name])
    if "engine_kwargs" in extra:
        kwargs["engine_kwargs"] = dict(extra["engine_kwargs"])
    replicas = int(extra["replicas"]) if "replicas" in extra else None
    return build_app(settings, replicas=replicas, autoscale=extra.get("autoscale"), **kwargs)


def start(
    settings: Settings,
    address: str | None = None,
    num_cpus: int | None = None,
    runtime_env: Mapping[str, Any] | None = None,
) -> None:
    """Connect to Ray (``address``: an existing cluster, e.g. "auto" or "ray://head:10001"; None: start a local
    one, dashboard off) and start Serve's HTTP proxy on ``settings.host:settings.port``."""
    if not ray.is_initialized():
        init: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if address is not None:
            init["address"] = address
        elif num_cpus is not None:
            init["num_cpus"] = num_cpus
        if runtime_env:
            init["runtime_env"] = dict(runtime_env)
        ray.init(**init)
    serve.start(http_options={"host": settings.host, "port": settings.port})


def run(
    settings: Settings,
    replicas: int | None = None,
    autoscale: tuple[int, int] | str | None = None,
    address: str | None = None,
    blocking: bool = True,
    **build_kwargs: Any,
) -> int:
    """Start Ray (local, or ``address``), deploy, serve on ``settings.host:settings.port`` through Serve's proxy.

    Returns once the model replicas are up (each captioned the sample pair) when ``blocking`` is False; else serves
    until Ctrl-C / SIGTERM, then shuts Serve (and a Ray it started) down and returns 0. Raises ValueError for bad
    options (exit code 2) and RuntimeError when the deployment fails (exit code 3)."""
    app = build_app(settings, replicas, autoscale, **build_kwargs)  # the options are checked before Ray starts
    started_ray = not ray.is_initialized() and address is None
    start(settings, address=address)
    try:
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    except Exception as exc:
        _shutdown(started_ray)
        raise RuntimeError(f"the Ray Serve deployment failed: {exc}") from exc
    log.info(
        "serving on http://%s:%d (Ray Serve, %s)",
        settings.host,
        settings.port,
        f"autoscale {autoscale}" if autoscale else f"{replicas or 1} replica(s)",
    )
    if not blocking:
        return 0
    import signal

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        _shutdown(started_ray)
    return 0


def _shutdown(started_ray: bool) -> None:
    try:
        serve.shutdown()
    finally:
        if started_ray:
            ray.shutdown()
