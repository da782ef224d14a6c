"""Two Ray nodes on loopback, one lost mid-search: every trial is still recorded, once.

The cluster here is not the session fixture's: a head and a worker node are started with
``ray start --block`` (one CPU each, each in its own process group, on a free port), and
the search runs in a subprocess with ``--address``. When a trial is running on the worker
node, that node's process group is killed (``ray stop`` would stop every node on the
machine); Ray reruns the lost trial on the head node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funcsearch.search.store import ResultsStore

pytestmark = [pytest.mark.ray, pytest.mark.slow]


RAY = str(Path(sys.executable).parent / "ray") if (Path(sys.executable).parent / "ray").exists() else "ray"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str, step: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def processes() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, command) of every process."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,pgid=,args="], capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        pid, ppid, pgid, command = line.split(None, 3) + [""] * (4 - len(line.split(None, 3)))
        rows.append((int(pid), int(ppid), int(pgid), command))
    return rows


def test_search_survives_losing_a_worker_node(tmp_path: Path) -> None:
    env = dict(os.environ, RAY_AUTH_MODE="token")  # `ray start` clusters use token auth
    port = free_port()
    address = f"127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    common = ["--num-cpus", "1", "--disable-usage-stats", "--block"]
    nodes: list[subprocess.Popen] = []
    search = None
    try:
        nodes.append(subprocess.Popen(
            [RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common],
            env=env, stdout=open(logs / "head.log", "w"), stderr=subprocess.STDOUT, start_new_session=True))
        status = lambda: subprocess.run([RAY, "status", "--address", address], env=env,  # noqa: E731
                                        capture_output=True, text=True).stdout
        wait_until(lambda: "1.0 CPU" in status(), 90, "the head node")
        nodes.append(subprocess.Popen(
            [RAY, "start", "--address", address, *common],
            env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT, start_new_session=True))
        wait_until(lambda: "2.0 CPU" in status(), 90, "the worker node")
        worker_group = nodes[1].pid  # its own session: pgid == pid

        config = tmp_path / "two.yaml"
        config.write_text(
            f"name: two\noutput: {tmp_path / 'results'}\n"
            "candidates: {functions: [isru]}\nbaselines: [layernorm, derf]\n"
            "proxies: {vit: {overrides: {epochs: 4, warmup_epochs: 0, dim: 32, depth: 2, heads: 2}}}\n"
            "seeds: [0, 1]\n")
        search = subprocess.Popen([sys.executable, "-m", "funcsearch.cli", "search", str(config),
                                   "--address", address], env=env,
                                  stdout=open(logs / "search.log", "w"), stderr=subprocess.STDOUT)
        raylet = wait_until(lambda: next((p for p, _, g, c in processes()
                                          if g == worker_group and "raylet" in c), None), 30,
                            f"the raylet of process group {worker_group}: {processes()}")
        wait_until(lambda: any(pp == raylet and c.startswith("ray::_execute") for _, pp, _, c in processes()),
                   180, "a trial running on the worker node")
        os.killpg(worker_group, signal.SIGKILL)  # the worker node is lost, mid-trial
        nodes[1].wait()
        assert search.poll() is None  # ... and mid-search
        stored_at_kill = len(list((tmp_path / "results" / "two" / "trials").glob("*.parquet")))
        assert stored_at_kill < 6

        assert search.wait(timeout=400) == 0, (logs / "search.log").read_text()[-3000:]
        frame = ResultsStore(tmp_path / "results" / "two").read()
        plan = json.loads((tmp_path / "results" / "two" / "plan.json").read_text())
        assert len(frame) == len(plan) == 6 and frame["trial_key"].is_unique
        assert sorted(frame["trial_key"]) == sorted(p["trial_key"] for p in plan)
        assert set(frame["status"]) == {"ok"}, frame[["candidate", "seed", "status", "message"]]
    finally:
        if search is not None and search.poll() is None:
            search.kill()
            search.wait()
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        # `ray start --head` leaves its address for a later plain `ray.init()`: take it back
        current = Path("/tmp/ray/ray_current_cluster")
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
