"""Shared fixtures. ``ray_cluster``: the ONE local Ray cluster of the test session.

It is started lazily, only by the tests that ask for it (the search tests), with two CPUs,
one *logical* GPU (Ray's GPU resources are bookkeeping: trials that reserve a share run on
the CPU here, which is how GPU scheduling is tested without a GPU), and the tests folder on
the workers' PYTHONPATH so that stand-in trial functions
(``tests/_fake_trials.py``) can be unpickled there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(TESTS_DIR)}})
    try:
        yield
    finally:
        ray.shutdown()
