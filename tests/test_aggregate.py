"""The aggregate ranking follows the rule the search config declares, with seed intervals."""

from __future__ import annotations

import pytest

from fixtures.results_fixture import results_frame
from funcsearch.aggregate import AggregateRule, aggregate_ranking
from funcsearch.errors import ConfigError
from funcsearch.search.config import parse_search_config


def test_the_default_rule_uses_each_proxy_s_declared_metric_and_ranks_failures_last() -> None:
    table, text = aggregate_ranking(results_frame(), bootstrap=200)
    assert text == "rank average of dit: fid, vit: test_loss"
    assert table["candidate"].iloc[-1] == "erf|translate=+2"  # diverged on every vit seed
    assert (table["ci95_low"] <= table["aggregate_score"]).all()
    assert (table["aggregate_score"] <= table["ci95_high"]).all()
    assert list(table["aggregate_rank"]) == sorted(table["aggregate_rank"])


def test_weights_and_metrics_change_the_order_as_declared() -> None:
    frame = results_frame()
    only_vit, _ = aggregate_ranking(frame, AggregateRule(metrics={"vit": "test_acc"},
                                                         weights={"vit": 1e6, "dit": 1e-6}), bootstrap=0)
    vit_alone, _ = aggregate_ranking(frame[frame["proxy"] == "vit"], AggregateRule(metrics={"vit": "test_acc"}),
                                     bootstrap=0)
    assert list(only_vit["candidate"]) == list(vit_alone["candidate"])


def test_a_config_declares_its_rule_and_unknown_names_are_refused_at_their_line() -> None:
    base = "name: a\ncandidates: {functions: [isru]}\nproxies: {vit: {}, dit: {}}\nseeds: [0]\n"
    config = parse_search_config(base + "aggregate: {metrics: {vit: test_acc}, weights: {dit: 2}}\n", "a.yaml")
    rule = config.aggregate.rule()
    assert rule.metric_of("vit", "x") == "test_acc" and rule.weights == {"dit": 2}
    with pytest.raises(ConfigError, match=r"a.yaml:5: aggregate.metrics.vit: vit reports no metric 'fid'"):
        parse_search_config(base + "aggregate: {metrics: {vit: fid}}\n", "a.yaml")
    with pytest.raises(ConfigError, match=r"a.yaml:5: aggregate.weights.lm2: proxy 'lm2' is not trained"):
        parse_search_config(base + "aggregate: {weights: {lm2: 1}}\n", "a.yaml")
