"""Load on the captioning service: 20 keyed clients for a bounded time against a real server process on 127.0.0.1.

The server runs as a subprocess (so its memory can be read from /proc/<pid>/status): by default this script in
``--serve-echo`` mode (the real service app with a pixel-echo engine whose captions name the mean pixel values it
got, plus ``--delay-ms`` per pair: the service's own costs without a model), or ``ccexpert serve --model PATH``
with ``--model``. Every client has its own API key and one connection, sends requests of ``--pairs`` pairs with
fresh ids and distinct chips, backs off on 429 honouring Retry-After, and checks each answer belongs to its pair
(same id order; echo: the caption names the pair's pixel values; model: the caption and confidence the same model
gives the pair in-process). Prints pairs/s, p50/p95 latency, the 429 share, server RSS before/after and the number of
mixed-up answers (must be 0); ``--json`` prints one JSON object instead.

``--greedy N`` (issue 24, finding 7) adds a second phase of the same length on the same server: the same clients
plus N clients sharing one more key that ignore Retry-After and send ``--greedy-body-mb`` bodies (valid JSON, the
pairs padded with whitespace); it prints the well-behaved clients' pairs/s in both phases and the slowdown, measured
side by side in one run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_load.py                  # echo engine, 20 clients, 20 s
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_load.py --clients 4 --greedy 20 --duration 15
    .venv/bin/python bench/bench_load.py --model ckpt/ --device cuda --duration 60 --json
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
from ccexpert.engine_api import EngineInfo
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


# -- the echo server (run as a subprocess of this script) --------------------------------------------------------------


@dataclass(frozen=True)
class _EchoResult:
    caption: str
    confidence: float
    changed: bool
    num_tokens: int


class EchoEngine:
    """The engine interface; the caption names the mean pixel value of each chip it got."""

    def __init__(self, chip_size: int, delay_s: float):
        self.chip_size, self.delay_s = chip_size, delay_s

    def info(self) -> EngineInfo:
        return EngineInfo("echo", "1", chip_size=self.chip_size, device="cpu", dtype="float32", max_batch=8, demo=True)

    def caption(self, pairs, max_new_tokens: int = 64):
        time.sleep(self.delay_s * len(pairs))
        out = []
        for before, after in pairs:
            b, a = int(round(float(np.mean(before)))), int(round(float(np.mean(after))))
            out.append(_EchoResult(echo_caption(b, a), (b % 100) / 100.0, b != a, 3))
        return out


def echo_caption(before: int, after: int) -> str:
    return f"before {before} after {after}"


def serve_echo(args: argparse.Namespace) -> int:
    import logging

    import uvicorn
    from ccexpert.service import Settings, create_app

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(
        api_keys_file=args.keys_file,
        max_batch=args.pairs,
        device_batch=args.device_batch,
        max_wait_ms=args.max_wait_ms,
        log_level="warning",
    )
    app = create_app(settings, EchoEngine(args.chip, args.delay_ms / 1000.0))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


# -- the load ----------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    ok_pairs: int = 0
    responses: int = 0
    overloaded: int = 0
    other_errors: int = 0
    mixed: int = 0
    examples: list[str] = field(default_factory=list)


class Kinds:
    """The chips clients send and what each must be answered with."""

    def __init__(self, chip: int, model_dir: str | None, device: str, tokens: int, count: int = 8):
        self.model = model_dir is not None
        rng = np.random.default_rng(5)
        self.items: list[tuple[str, str, object]] = []
        if not self.model:  # flat chips: the echo caption names the values, so 251 x 253 kinds, made on the fly
            return
        from ccexpert.engine import CaptionEngine

        engine = CaptionEngine.from_pretrained(model_dir, device=device)
        for _ in range(count):
            pair = []
            for _side in range(2):
                image = np.empty((chip, chip, 3), np.uint8)
                image[:] = rng.integers(0, 256, 3)
                y, x = rng.integers(0, chip // 2, 2)
                image[y : y + chip // 4, x : x + chip // 4] = rng.integers(0, 256, 3)
                pair.append(image)
            expected = engine.caption([tuple(pair)], max_new_tokens=tokens)[0]
            self.items.append((png_b64(pair[0]), png_b64(pair[1]), expected))

    def pair(self, chip: int, n: int, cache: dict) -> tuple[str, str, object]:
        if self.model:
            return self.items[n % len(self.items)]
        b, a = n % 251, (7 * n + 3) % 253
        if (b, a) not in cache:
            cache[(b, a)] = (
                png_b64(np.full((chip, chip, 3), b, np.uint8)),
                png_b64(np.full((chip, chip, 3), a, np.uint8)),
                echo_caption(b, a),
            )
        return cache[(b, a)]

    def matches(self, expected: object, result: dict) -> bool:
        if not self.model:
            return result["caption"] == expected
        return result["caption"] == expected.caption and abs(result["confidence"] - expected.confidence) <= 1e-3 * max(
            expected.confidence, 1e-6
        )


def client(
    index: int, url: str, key: str, kinds: Kinds, args: argparse.Namespace, stop_at: float, tally: Tally
) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    cache: dict = {}
    rng = random.Random(index)
    request_no = 0
    while time.monotonic() < stop_at:
        request_no += 1
        sent = []
        for k in range(args.pairs):
            n = (index * 7919 + request_no * args.pairs + k) % 10_007
            before, after, expected = kinds.pair(args.chip, n, cache)
            sent.append((f"c{index:02d}_r{request_no:05d}_p{k}", before, after, expected))
        body = {
            "pairs": [{"id": i, "before": b, "after": a} for i, b, a, _ in sent],
            "max_new_tokens": args.max_new_tokens,
        }
        t0 = time.perf_counter()
        try:
            response = session.post(url + "/v1/captions", json=body, timeout=(5, max(30.0, args.duration * 3)))
        except requests.RequestException as exc:
            with tally.lock:
                tally.other_errors += 1
                tally.examples.append(f"client {index}: {exc}")
            time.sleep(0.2)
            continue
        elapsed = time.perf_counter() - t0
        with tally.lock:
            tally.responses += 1
        if response.status_code == 429:
            with tally.lock:
                tally.overloaded += 1
            wait = float(response.headers.get("Retry-After", "1"))
            time.sleep(min(wait, 2.0) * (0.5 + rng.random()))
            continue
        if response.status_code != 200:
            with tally.lock:
                tally.other_errors += 1
                tally.examples.append(f"client {index}: HTTP {response.status_code} {response.text[:200]}")
            continue
        results = response.json()["results"]
        wrong = 0
        if [r["id"] for r in results] != [s[0] for s in sent]:
            wrong = len(sent)
        else:
            wrong = sum(not kinds.matches(s[3], r) for s, r in zip(sent, results, strict=True))
        with tally.lock:
            tally.latencies.append(elapsed)
            tally.ok_pairs += len(results) - wrong
            tally.mixed += wrong
            if wrong and len(tally.examples) < 5:
                tally.examples.append(f"client {index}: {wrong} answers belong to other pairs: {results[:2]}")


@dataclass
class GreedyTally:
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def greedy_body(args: argparse.Namespace, kinds: Kinds) -> bytes:
    """``args.pairs`` valid pairs padded with whitespace to ``--greedy-body-mb``: the cost of a big scene's body."""
    cache: dict = {}
    pairs = []
    for k in range(args.pairs):
        before, after, _ = kinds.pair(args.chip, 9000 + k, cache)
        pairs.append({"id": f"greedy_p{k}", "before": before, "after": after})
    body = json.dumps({"pairs": pairs, "max_new_tokens": args.max_new_tokens}).encode()
    padding = max(0, int(args.greedy_body_mb * 1024 * 1024) - len(body))
    return body[:-1] + b" " * padding + b"}"


def greedy_client(url: str, key: str, body: bytes, stop_at: float, tally: GreedyTally) -> None:
    """Sends ``body`` again and again, ignoring Retry-After (a client that does not back off)."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    while time.monotonic() < stop_at:
        try:
            status = session.post(url + "/v1/captions", data=body, headers=headers, timeout=(5, 60)).status_code
        except requests.RequestException:
            status = 0
            session = requests.Session()  # the server closed it (429 before the body): a new connection
        with tally.lock:
            tally.statuses[status] = tally.statuses.get(status, 0) + 1


def start_server(args: argparse.Namespace, keys_file: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.model:
        command = [
            sys.executable,
            "-m",
            "ccexpert.cli",
            "serve",
            "--model",
            args.model,
            "--device",
            args.device,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-keys-file",
            str(keys_file),
            "--max-batch",
            str(args.pairs),
            "--device-batch",
            str(args.device_batch),
            "--max-wait-ms",
            str(args.max_wait_ms),
            "--max-new-tokens",
            str(args.max_new_tokens),
            "--log-level",
            "warning",
        ]
    else:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-echo",
            "--port",
            str(port),
            "--keys-file",
            str(keys_file),
            "--chip",
            str(args.chip),
            "--delay-ms",
            str(args.delay_ms),
            "--pairs",
            str(args.pairs),
            "--device-batch",
            str(args.device_batch),
            "--max-wait-ms",
            str(args.max_wait_ms),
        ]
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(url: str, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                return requests.get(url + "/v1/info", timeout=5).json()
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout:.0f} s")


def run_load(args: argparse.Namespace) -> dict:
    from ccexpert.service.auth import key_line

    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        keys = [f"bench-key-{i:02d}-{os.urandom(8).hex()}" for i in range(args.clients)]
        greedy_key = f"bench-greedy-{os.urandom(8).hex()}"
        keys_file = Path(tmp) / "keys.txt"
        keys_file.write_text(
            "".join(key_line(k, f"client{i:02d}") + "\n" for i, k in enumerate(keys)) + key_line(greedy_key, "greedy")
        )
        keys_file.chmod(0o600)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "server.log"
        process = start_server(args, keys_file, port, log_path)
        try:
            info = wait_ready(url, process, args.ready_timeout)
            args.chip = int(info["chip_size"])
            kinds = Kinds(args.chip, args.model, args.device, args.max_new_tokens)
            rss_before = rss_mib(process.pid)
            tally = Tally()
            t0 = time.monotonic()
            stop_at = t0 + args.duration
            threads = [
                threading.Thread(target=client, args=(i, url, keys[i], kinds, args, stop_at, tally), daemon=True)
                for i in range(args.clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.duration * 4 + 60)
            wall = time.monotonic() - t0
            rss_after = rss_mib(process.pid)
            greedy: dict = {}
            if args.greedy:
                greedy = greedy_phase(args, url, keys, greedy_key, kinds)
                greedy["alone_pairs_per_s"] = round(tally.ok_pairs / wall, 2)
                greedy["slowdown"] = round(
                    greedy["alone_pairs_per_s"] / max(greedy["with_greedy_pairs_per_s"], 1e-9), 2
                )
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            server_log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    lat = sorted(tally.latencies)
    return {
        "server": f"ccexpert serve --model {args.model} ({args.device})"
        if args.model
        else f"service app + echo engine ({args.delay_ms:g} ms per pair)",
        "model": info["model_name"],
        "chip_size": args.chip,
        "clients": args.clients,
        "duration_s": round(wall, 2),
        "pairs_per_request": args.pairs,
        "pairs_per_s": round(tally.ok_pairs / wall, 2),
        "requests_ok": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
        "p95_ms": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000, 1) if lat else None,
        "share_429": round(tally.overloaded / tally.responses, 4) if tally.responses else 0.0,
        "other_errors": tally.other_errors,
        "server_rss_mib_before": round(rss_before, 1) if rss_before else None,
        "server_rss_mib_after": round(rss_after, 1) if rss_after else None,
        "mixed_up": tally.mixed,
        "examples": tally.examples[:5],
        "server_log_tail": server_log if tally.other_errors or tally.mixed else "",
        "greedy": greedy,
    }


def greedy_phase(args: argparse.Namespace, url: str, keys: list[str], greedy_key: str, kinds: Kinds) -> dict:
    """The same clients again for ``args.duration``, with ``args.greedy`` clients of one key that do not back off, in
    a process of their own (so that they do not share this process's GIL with the well-behaved clients)."""
    body = greedy_body(args, kinds)
    with tempfile.NamedTemporaryFile(prefix="bench_greedy_", suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        tally = Tally()
        t0 = time.monotonic()
        stop_at = t0 + args.duration
        worker = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--greedy-worker",
                body_file.name,
                "--greedy",
                str(args.greedy),
                "--port",
                "0",
                "--duration",
                str(args.duration),
                "--keys-file",
                greedy_key,
                "--url",
                url,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        threads = [
            threading.Thread(target=client, args=(i, url, keys[i], kinds, args, stop_at, tally), daemon=True)
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.duration * 4 + 60)
        wall = time.monotonic() - t0
        out, _ = worker.communicate(timeout=args.duration * 4 + 60)
    return {
        "greedy_clients": args.greedy,
        "greedy_body_bytes": len(body),
        "greedy_statuses": json.loads(out.strip().splitlines()[-1]),
        "with_greedy_pairs_per_s": round(tally.ok_pairs / wall, 2),
        "with_greedy_mixed_up": tally.mixed,
    }


def greedy_worker(args: argparse.Namespace) -> int:
    """``--greedy-worker BODY``: ``--greedy`` threads posting BODY with key ``--keys-file`` for ``--duration`` s;
    prints the statuses as one JSON line."""
    body = Path(args.greedy_worker).read_bytes()
    tally = GreedyTally()
    stop_at = time.monotonic() + args.duration
    threads = [
        threading.Thread(target=greedy_client, args=(args.url, args.keys_file, body, stop_at, tally), daemon=True)
        for _ in range(args.greedy)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.duration + 120)
    print(json.dumps({str(k): v for k, v in sorted(tally.statuses.items())}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load (bounded)")
    parser.add_argument("--pairs", type=int, default=2, help="pairs per request (also the server's max_batch)")
    parser.add_argument("--model", help="a checkpoint folder: run `ccexpert serve --model` instead of the echo app")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chip", type=int, default=64, help="chip size of the echo engine")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="echo engine time per pair")
    parser.add_argument("--device-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--greedy", type=int, default=0, help="then again with N clients of one key ignoring 429")
    parser.add_argument("--greedy-body-mb", type=float, default=4.0, help="body size of the greedy clients")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--greedy-worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keys-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_echo:
        return serve_echo(args)
    if args.greedy_worker:
        return greedy_worker(args)
    if args.duration <= 0 or args.duration > 3600 or args.clients < 1:
        parser.error("--duration must be in (0, 3600] and --clients >= 1")
    report = run_load(args)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"server: {report['server']}, model {report['model']}, {report['chip_size']} px chips")
        print(
            f"{report['clients']} keyed clients x {report['duration_s']} s, {report['pairs_per_request']} pairs per "
            f"request, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
        )
        print(f"pairs/s:         {report['pairs_per_s']}")
        print(
            f"latency:         p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms ({report['requests_ok']} requests)"
        )
        print(f"429 share:       {report['share_429']:.2%} (other errors: {report['other_errors']})")
        print(
            f"server RSS:      {report['server_rss_mib_before']} MiB before, {report['server_rss_mib_after']} MiB after"
        )
        print(f"mixed-up ids:    {report['mixed_up']} (must be 0)")
        for line in report["examples"]:
            print("  " + line)
        if report["greedy"]:
            g = report["greedy"]
            print(
                f"greedy key:      {g['greedy_clients']} clients of one key ignoring Retry-After, "
                f"{g['greedy_body_bytes'] / 1e6:.1f} MB bodies (statuses {g['greedy_statuses']})"
            )
            print(
                f"  the {report['clients']} clients: {g['alone_pairs_per_s']} pairs/s alone, "
                f"{g['with_greedy_pairs_per_s']} with the greedy key: {g['slowdown']}x slower"
            )
    mixed = report["mixed_up"] + (report["greedy"] or {}).get("with_greedy_mixed_up", 0)
    return 0 if mixed == 0 and report["other_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
