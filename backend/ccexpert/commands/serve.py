"""``ccexpert serve``: the HTTP captioning service (FastAPI + uvicorn).

Configuration: flags > ``CCEXPERT_*`` environment > ``--config`` TOML (a ``[serve]`` table or top-level keys)
> defaults. ``--hash-key`` prints the keys-file line for a key read from standard input.

Before it reports ready, the service captions a built-in sample pair with the model. Exit codes: 0 stopped
(SIGINT/SIGTERM; requests in flight get ``--shutdown-grace-s`` to finish, then 503 shutting_down), 2 bad configuration
(including a keys file writable by group or others, or a port in use), 3 the model could not be loaded or could not
caption the sample pair. ``--hash-key`` refuses keys shorter than 16 characters.

Put a TLS reverse proxy in front of a server that others reach (see docs/SERVING.md, "Limits and threat model").

``--ray`` serves the same API on Ray Serve: ``--replicas N`` model replicas (one engine each; a GPU each on CUDA) or
``--autoscale MIN:MAX``, on a local Ray or an existing cluster (``--ray-address``); see docs/SCALEOUT.md.
"""

from __future__ import annotations

import argparse
import logging
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the HTTP captioning service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML file")
    p.add_argument("--model", help="checkpoint folder or hub id (default: the shipped demo model)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", help="auto, bf16, fp16, fp32")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000; 0 = any free port)")
    p.add_argument("--api-keys-file", help="file of 'sha256:<hex> [label]' lines (see --hash-key)")
    p.add_argument("--insecure", action="store_const", const=True, help="allow a non-loopback bind without keys")
    p.add_argument("--max-batch", type=int, help="most pairs per request (default 16)")
    p.add_argument("--device-batch", type=int, help="most pairs per device batch (default 8)")
    p.add_argument("--max-wait-ms", type=float, help="how long a device batch waits to fill (default 10)")
    p.add_argument("--max-body-bytes", type=int, help="largest request body (default 64 MiB)")
    p.add_argument("--max-concurrency", type=int, help="caption requests in flight before 429 (default 32)")
    p.add_argument(
        "--max-concurrency-per-key",
        type=int,
        help="caption requests in flight per API key (default max(1, max_concurrency // 4))",
    )
    p.add_argument("--body-timeout-s", type=float, help="the whole body must arrive within this, else 408 (default 30)")
    p.add_argument(
        "--request-timeout-s", type=float, help="longest wait for the engine's results, else 503 timeout (default 240)"
    )
    p.add_argument(
        "--metrics-require-key",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="put /metrics behind the API key (default: only when keys are on and the bind is not loopback)",
    )
    p.add_argument("--max-new-tokens", type=int, help="default and upper bound per request (default 64)")
    p.add_argument(
        "--shutdown-grace-s",
        type=float,
        help="after SIGTERM/SIGINT, how long requests in flight may take before they get 503 (default 10)",
    )
    p.add_argument("--log-level", help="debug, info, warning")
    p.add_argument("--hash-key", action="store_true", help="print the keys-file line of a key read from stdin")
    ray = p.add_argument_group("scale-out on Ray Serve (pip extra ccexpert[ray])")
    ray.add_argument("--ray", action="store_true", help="serve on Ray Serve replicas instead of one process")
    scale = ray.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, help="model replicas (default 1)")
    scale.add_argument("--autoscale", metavar="MIN:MAX", help="autoscale the model replicas on ongoing requests")
    ray.add_argument("--ray-address", help="an existing Ray cluster (e.g. auto, or HEAD:6379); default: start one")


def run(args: argparse.Namespace) -> int:
    from ccexpert.service.auth import check_key_strength, key_line

    if args.hash_key:
        try:
            key = sys.stdin.readline().strip()
            check_key_strength(key)
            print(key_line(key))
        except ValueError as exc:
            print(f"ccexpert serve: {exc}", file=sys.stderr)
            return 2
        return 0

    from ccexpert.service.settings import Settings, load_settings

    overrides = {name: getattr(args, name, None) for name in Settings.model_fields}
    if (args.replicas is not None or args.autoscale or args.ray_address) and not args.ray:
        print("ccexpert serve: --replicas, --autoscale and --ray-address go with --ray", file=sys.stderr)
        return 2
    if args.ray:
        return _run_ray(args, overrides)
    try:
        settings = load_settings(args.config, overrides)
    except ValueError as exc:
        print(f"ccexpert serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ccexpert.service.server import run_service

    return run_service(settings)


def _run_ray(args: argparse.Namespace, overrides: dict) -> int:
    """The same service on Ray Serve; exit codes as without --ray (2 bad options, 3 the model cannot serve)."""
    from ccexpert.service.settings import load_settings

    try:
        from ccexpert.ray_serve import parse_autoscale
        from ccexpert.ray_serve import run as ray_run
    except ImportError as exc:
        print(f"ccexpert serve: --ray needs Ray Serve (pip install 'ccexpert[ray]'): {exc}", file=sys.stderr)
        return 2
    try:
        settings = load_settings(args.config, overrides)
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return ray_run(
            settings,
            replicas=args.replicas,
            autoscale=parse_autoscale(args.autoscale) if args.autoscale else None,
            address=args.ray_address,
            blocking=True,
        )
    except ValueError as exc:
        print(f"ccexpert serve: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"ccexpert serve: the model cannot serve captions, stopping: {exc}", file=sys.stderr)
        return 3
