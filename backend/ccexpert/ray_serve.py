"""Scale-out serving on Ray Serve: the same HTTP API as ``ccexpert serve``, many model replicas, many machines.

The deployments (``CaptionModel``, the model replicas; ``CCExpertAPI``, the ingress serving the very app of
``ccexpert serve``) are in ``ccexpert.ray_deployments``; this module is the launcher: it checks the options, builds
the Serve application (``APP_NAME``) from them, starts Ray and Serve's proxy and serves until stopped.

Entry points: :func:`run` (``ccexpert serve --ray``), :func:`app_builder` (``serve run deploy/serve.yaml``,
``serve run ccexpert.ray_serve:app_builder model=ckpt/ replicas=2``), :func:`build_app` (tests, benchmarks).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import ray
    from ray import serve
except ImportError as exc:  # pragma: no cover - the [ray] extra
    raise ImportError("ccexpert.ray_serve needs Ray Serve: pip install -e '.[ray]'") from exc

from .ray_deployments import (
    APP_NAME,
    BATCHING_MODES,
    DEFAULT_RETRY_BUDGET_S,
    INGRESS_DEPLOYMENT,
    MODEL_DEPLOYMENT,
    CaptionModel,
    CCExpertAPI,
    IngressService,
    ReplicaEngine,
    ReplicasUnavailable,
    caption_grouped,
)
from .service import create_app
from .service.settings import Settings, load_settings

log = logging.getLogger("ccexpert.ray_serve")

__all__ = [
    "APP_NAME",
    "BATCHING_MODES",
    "DEFAULT_RETRY_BUDGET_S",
    "INGRESS_DEPLOYMENT",
    "MODEL_DEPLOYMENT",
    "CCExpertAPI",
    "CaptionModel",
    "IngressService",
    "ReplicaEngine",
    "ReplicasUnavailable",
    "app_builder",
    "build_app",
    "caption_grouped",
    "parse_autoscale",
    "run",
    "start",
]


def parse_autoscale(text: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
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
    # @serve.deployment turns the class into a Deployment, but mypy keeps a decorated class's own type
    model = CaptionModel.options(**options).bind(  # type: ignore[attr-defined]
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
