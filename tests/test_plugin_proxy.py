"""A proxy plugs in without editing any other module: this file defines a throwaway proxy,
registers it, and runs it through a real search on Ray, the leaderboard and the report.

The toy task: fit y = sin(3 w.x) on random points with a one-hidden-layer network whose
hidden activations pass through one norm site. Its vocabulary ("toy_r2", higher is better,
final only; "toy_loss", lower, per epoch) is declared here and nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from pydantic import Field
from torch import Tensor, nn

from funcsearch.ranking import leaderboard
from funcsearch.metrics import Metric
from funcsearch.proxies import Proxy, register_proxy, unregister_proxy
from funcsearch.proxies.config import TrainConfig
from funcsearch.proxies.device import Runtime
from funcsearch.proxies.training import ProxyRun, TrainTask, train
from funcsearch.report import write_report
from funcsearch.search import run_search
from funcsearch.search.store import ResultsStore


class ToyConfig(TrainConfig):
    epochs: int = Field(3, ge=1)
    warmup_epochs: float = 0.0
    width: int = Field(16, ge=1)


@dataclass(frozen=True)
class ToyData:
    x: Tensor
    y: Tensor
    fingerprint: str = "toy-v1"


def load_toy(path: str | None) -> ToyData:
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(256, 4, generator=generator)
    return ToyData(x, torch.sin(3 * x @ torch.tensor([0.5, -0.3, 0.2, 0.1])))


class ToyNet(nn.Module):
    def __init__(self, width: int, norm) -> None:
        super().__init__()
        self.inp, self.norm, self.out = nn.Linear(4, width), norm(width, "mlp"), nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.norm(self.inp(x))).squeeze(-1)


def run_toy(config: ToyConfig, norm, data: ToyData, seed: int, on_epoch, runtime: Runtime) -> ProxyRun:
    device = runtime.torch_device
    model = ToyNet(config.width, norm).to(device)
    x, y = data.x.to(device), data.y.to(device)

    def batch_loss(model: nn.Module, batch: Tensor, generator: torch.Generator) -> Tensor:
        return nn.functional.mse_loss(model(x[batch]), y[batch])

    def evaluate(model: nn.Module) -> dict[str, float]:
        return {"toy_loss": float(nn.functional.mse_loss(model(x), y))}

    outcome = train(TrainTask(model, len(y), batch_loss, evaluate), config, seed, on_epoch, runtime)
    residual = float(nn.functional.mse_loss(outcome.eval_model(x), y).detach())
    return ProxyRun(outcome, {"toy_r2": 1 - residual / float(y.var())}, {"parameters": 0})


TOY = Proxy(
    name="toyproxy", config_class=ToyConfig, run=run_toy, load_data=load_toy,
    metrics=(Metric("toy_r2", True, False, "toy R^2"), Metric("toy_loss", False, True, "toy loss"),
             Metric("train_loss", False, True, "training loss")),
    primary_metric="toy_r2", halving_metric="toy_loss", smoke={"epochs": 2},
    description="a throwaway regression proxy of this test",
)


@pytest.fixture
def toy_registered() -> Iterator[Proxy]:
    register_proxy(TOY)
    try:
        yield TOY
    finally:
        unregister_proxy(TOY.name)


@pytest.mark.ray
def test_a_throwaway_proxy_runs_through_search_leaderboard_and_report(ray_cluster: None, tmp_path: Path,
                                                                      toy_registered: Proxy) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text(f"name: toy\noutput: {tmp_path / 'results'}\n"
                      "candidates: {functions: [isru, 'x'], require: []}\nbaselines: [layernorm, derf]\n"
                      "proxies: {toyproxy: {overrides: {epochs: 3}}}\nseeds: [0, 1]\n"
                      "early_stopping: {gate: {epochs: 1, require: {toyproxy: {toy_loss: {max: 100}}}}}\n")
    outcome = run_search(config, live=False)
    frame = ResultsStore(outcome.folder).read()
    assert len(frame) == 8 and set(frame["status"]) == {"ok"}, frame[["candidate", "message"]]
    assert set(frame["primary_metric"]) == {"toy_r2"} and frame["higher_is_better"].all()
    assert frame["score"].map(math.isfinite).all()
    board = leaderboard(outcome.folder)
    assert list(board.proxies) == ["toyproxy"] and board.primary["toyproxy"] == ("toy_r2", True)
    md = (outcome.folder / "leaderboard.md").read_text()
    assert "## toyproxy (toy_r2, higher is better)" in md
    assert "|u|>1 / >2 / p99 at end" in md  # the regime of the point-wise functions, beside each
    page = write_report(outcome.folder, bootstrap=50)
    assert "toyproxy" in page.read_text()


def test_an_unknown_metric_of_a_plugged_in_proxy_is_refused_at_its_line(tmp_path: Path,
                                                                         toy_registered: Proxy) -> None:
    from funcsearch.errors import ConfigError
    from funcsearch.search.config import parse_search_config

    text = ("name: toy\ncandidates: {functions: [isru]}\nproxies: {toyproxy: {}}\nseeds: [0]\n"
            "early_stopping:\n  gate:\n    require:\n      toyproxy: {test_acc: {min: 0.5}}\n")
    with pytest.raises(ConfigError, match=r"toy.yaml:8: early_stopping.gate.require.toyproxy.test_acc: "
                                          r"toyproxy reports no per-epoch metric 'test_acc'"):
        parse_search_config(text, "toy.yaml")


def test_a_proxy_sharing_a_task_must_be_registered_after_it_and_report_its_metrics() -> None:
    """A copied run of the task keeps its score, so a proxy that shares vit's runs reports vit's
    metrics; one naming an unregistered task or other metrics is refused when registered."""
    import dataclasses

    from funcsearch.proxies.registry import PROXIES

    hot = dataclasses.replace(PROXIES["vit"], name="vit_hot", task="vit")
    try:
        assert register_proxy(hot).task_name == "vit"
    finally:
        unregister_proxy("vit_hot")
    with pytest.raises(ValueError, match="vit_fid: shares the runs of vit, so it must report vit's metrics"):
        register_proxy(dataclasses.replace(PROXIES["dit"], name="vit_fid", task="vit"))
    with pytest.raises(ValueError, match="its task 'nope' is not a registered proxy"):
        register_proxy(dataclasses.replace(PROXIES["vit"], name="orphan", task="nope"))
    assert not {"vit_fid", "orphan"} & set(PROXIES)
