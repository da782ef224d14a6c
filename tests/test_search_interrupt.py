"""Ctrl-C (SIGINT) and SIGTERM (kill, a scheduler's preemption) interrupt a search: it prints
one line, exits 130 or 143, and a rerun resumes with every finished trial kept; a dead Ray
address fails in seconds with one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funcsearch.search import run_search
from funcsearch.search.store import ResultsStore

BODY = ("candidates: {functions: [isru, smoothsign, arctan], require: []}\nbaselines: [layernorm]\n"
        "proxies: {vit: {overrides: {epochs: 2, warmup_epochs: 0, dim: 16, depth: 1, heads: 2,"
        " batch_size: 64}}}\nseeds: [0, 1]\n")


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code", "said"), [(signal.SIGINT, 130, "interrupted"),
                                                      (signal.SIGTERM, 143, "terminated (SIGTERM")])
def test_a_signal_during_a_search_exits_cleanly_and_a_rerun_loses_nothing(
        ray_cluster: None, tmp_path: Path, signum: int, code: int, said: str) -> None:
    import ray

    path = tmp_path / "t.yaml"
    path.write_text(f"name: t\noutput: {tmp_path / 'results'}\n{BODY}")
    trials_dir = tmp_path / "results" / "t" / "trials"
    search = subprocess.Popen([sys.executable, "-m", "funcsearch.cli", "search", str(path), "--address",
                               ray.get_runtime_context().gcs_address],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(trials_dir.glob("*.parquet"))) < 2:
        assert search.poll() is None, search.communicate()
        time.sleep(0.1)
    search.send_signal(signum)
    _, err = search.communicate(timeout=120)
    assert search.returncode == code, err
    assert said in err and "Traceback" not in err
    before = ResultsStore(tmp_path / "results" / "t").read().set_index("trial_key")
    assert 2 <= len(before) < 8 and set(before["status"]) == {"ok"}
    outcome = run_search(path, live=False)
    after = ResultsStore(tmp_path / "results" / "t").read().set_index("trial_key")
    assert len(after) == 8 and outcome.runs == 8 - len(before)
    assert (after.loc[before.index, "started_at"] == before["started_at"]).all()


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_a_dead_ray_address_fails_in_seconds_with_one_line(tmp_path: Path, address: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"name: t\noutput: {tmp_path / 'results'}\n{BODY}")
    # the connection is refused at once; timeout= is the hang guard (TimeoutExpired fails the test)
    done = subprocess.run([sys.executable, "-m", "funcsearch.cli", "search", str(path), "--address", address],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --address: cannot connect to Ray at {address}")


def test_a_dead_address_in_the_config_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"name: t\noutput: {tmp_path / 'results'}\n{BODY}ray:\n  address: 127.0.0.1:1\n")
    done = subprocess.run([sys.executable, "-m", "funcsearch.cli", "search", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {path}:8: ray.address: cannot connect to Ray at 127.0.0.1:1: nothing answers there "
        "(Connection refused)"]
