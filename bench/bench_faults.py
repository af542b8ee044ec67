"""Fault injection for ``ccexpert describe``, in one command: tiles lost or duplicated when the client is killed at
random points and the server is killed and restarted under it.

A real ``ccexpert serve`` stand-in (the service app with the pixel-echo engine of the tests, as its own process on
127.0.0.1) and real ``ccexpert describe --backend`` processes work on a generated GeoTIFF pair. N faults are
injected, alternating (random order) between

- client killed: the running ``describe`` gets SIGKILL once it has written a random few more tiles; the next one
  is started with ``--resume``;
- server killed and restarted: the server gets SIGKILL mid-run, comes back on the same port after a random pause,
  and the running ``describe`` carries on through its retries (``--retry-budget``).

When a run completes an output before all faults are in, a new output is started (a new round). At the end every
output is finished with a last ``--resume`` and checked: tiles lost (a chip of the grid without an ``ok`` row),
tiles duplicated (more than one row for a tile) and tiles wrong (a caption that is not the one computed from that
tile's pixels: a result written to the wrong tile).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_faults.py [--faults 8] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests" / "backend"
LAYER = "change_captions"
SERVER = (
    "import sys; sys.path.insert(0, sys.argv[3]); import uvicorn; "
    "from ccexpert.service import Settings, create_app; from service_helpers import EchoEngine; "
    "uvicorn.run(create_app(Settings(), EchoEngine(delay_per_pair=float(sys.argv[2]))), host='127.0.0.1', "
    "port=int(sys.argv[1]), log_level='critical')"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute(f'SELECT COUNT(*) FROM "{LAYER}"').fetchone()[0]
    except sqlite3.DatabaseError:
        return 0


def block_value(row: int, col: int, per_row: int) -> int:
    return (row * per_row + col + 1) * 10 % 256


def make_pair(folder: Path, size: int, chip: int) -> tuple[Path, Path]:
    """uint8 rasters whose every chip has its own flat grey (the echo caption tells which tile it came from)."""
    import rasterio
    from rasterio.transform import from_origin

    n = size // chip
    grid = np.array([[block_value(r, c, n) for c in range(n)] for r in range(n)], dtype=np.uint8)
    image = np.kron(grid, np.ones((chip, chip), dtype=np.uint8))
    paths = []
    for name, shift in (("before.tif", 0), ("after.tif", 2)):
        data = np.repeat((image + shift)[None], 3, axis=0).astype(np.uint8)
        path = folder / name
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=size,
            height=size,
            count=3,
            dtype="uint8",
            crs="EPSG:32633",
            transform=from_origin(399_000.0, 5_700_000.0, 0.5, 0.5),
            tiled=True,
            blockxsize=256,
            blockysize=256,
        ) as dst:
            dst.write(data)
        paths.append(path)
    return paths[0], paths[1]


class Server:
    def __init__(self, port: int, delay: float, log: Path):
        self.port, self.delay, self.log = port, delay, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import requests

        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(self.port), str(self.delay), str(TESTS)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("server not ready after 120 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def check(out: Path, n: int) -> dict[str, int]:
    """Lost, duplicated and wrong tiles of a finished output (n x n chips)."""
    with sqlite3.connect(out) as db:
        found = db.execute(f'SELECT row, col, status, caption FROM "{LAYER}"').fetchall()
    seen: dict[tuple[int, int], int] = {}
    wrong = 0
    found = [(row - 1, col - 1, status, caption) for row, col, status, caption in found]  # the layer counts from 1
    for row, col, status, caption in found:
        seen[(row, col)] = seen.get((row, col), 0) + 1
        value = block_value(row, col, n)
        if status == "ok" and caption != f"before {value} after {(value + 2) % 256}":
            wrong += 1
    ok = {(r, c) for r, c, status, _ in found if status == "ok"}
    lost = sum(1 for r in range(n) for c in range(n) if (r, c) not in ok)
    return {"lost": lost, "duplicated": sum(k - 1 for k in seen.values() if k > 1), "wrong": wrong}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", type=int, default=8, help="faults to inject (client kills + server kills)")
    parser.add_argument("--size", type=int, default=1152, help="raster size in pixels")
    parser.add_argument("--chip", type=int, default=64, help="chip size in pixels (1152/64: 324 tiles)")
    parser.add_argument("--delay", type=float, default=0.01, help="seconds the echo engine spends per pair")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000
    rng = random.Random(seed)
    n = args.size // args.chip
    t0 = time.monotonic()
    kinds = ["client", "server"] * (args.faults // 2) + (["client"] if args.faults % 2 else [])
    rng.shuffle(kinds)
    injected = {"client": 0, "server": 0}
    exit_codes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
        folder = Path(tmp)
        before, after = make_pair(folder, args.size, args.chip)
        server = Server(free_port(), args.delay, folder / "server.log")
        server.start()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        outputs = [folder / "out_1.gpkg"]

        def command(out: Path) -> list[str]:
            return [
                sys.executable,
                "-m",
                "ccexpert.cli",
                "describe",
                str(before),
                str(after),
                "-o",
                str(out),
                "--backend",
                server.url,
                "--chip-size",
                str(args.chip),
                "--batch-size",
                "4",
                "--resume",
                "--retry-budget",
                "120",
                "-q",
            ]

        client: subprocess.Popen | None = None
        try:
            for kind in kinds:
                while True:  # run until the fault could be injected mid-run
                    out = outputs[-1]
                    if client is None:
                        client = subprocess.Popen(
                            command(out), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                        )
                    target = rows(out) + rng.randint(1, 12)
                    while client.poll() is None and rows(out) < target:
                        time.sleep(0.005)
                    if client.poll() is None:
                        break
                    exit_codes.append(client.returncode)  # the run finished first: a new round, a new output
                    client = None
                    outputs.append(folder / f"out_{len(outputs) + 1}.gpkg")
                if kind == "client":
                    client.send_signal(signal.SIGKILL)
                    client.wait(30)
                    client = None
                else:
                    server.kill()
                    time.sleep(rng.uniform(0.1, 1.5))
                    server.start()
                injected[kind] += 1
            if client is not None:
                exit_codes.append(client.wait(600))
            for out in outputs:  # finish every output
                exit_codes.append(
                    subprocess.run(command(out), cwd=REPO, env=env, capture_output=True, timeout=600).returncode
                )
            totals = {"lost": 0, "duplicated": 0, "wrong": 0}
            for out in outputs:
                for key, value in check(out, n).items():
                    totals[key] += value
        finally:
            if client is not None and client.poll() is None:
                client.kill()
                client.wait(30)
            server.stop()
    result = {
        "faults_injected": injected["client"] + injected["server"],
        "client_kills": injected["client"],
        "server_kills": injected["server"],
        "outputs": len(outputs),
        "tiles": n * n * len(outputs),
        "tiles_lost": totals["lost"],
        "tiles_duplicated": totals["duplicated"],
        "tiles_wrong": totals["wrong"],
        "runs_failed": sum(1 for code in exit_codes if code != 0),
        "seconds": round(time.monotonic() - t0, 1),
        "seed": seed,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"faults injected: {result['faults_injected']} ({result['client_kills']} client kills, "
            f"{result['server_kills']} server kills and restarts), {result['outputs']} output(s) of {n * n} tiles"
        )
        print(f"tiles lost: {result['tiles_lost']}")
        print(f"tiles duplicated: {result['tiles_duplicated']}")
        print(f"tiles wrong: {result['tiles_wrong']}")
        print(f"describe runs not ending 0: {result['runs_failed']}; {result['seconds']} s, seed {seed}")
    return 0 if totals["lost"] == totals["duplicated"] == totals["wrong"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
