"""The aggregate ranking follows the rule the search config declares, with seed intervals."""

from __future__ import annotations

import pandas as pd
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


def _screen_rows(frame: pd.DataFrame, diverges: dict[str, int]) -> pd.DataFrame:
    """vit's rows copied as a vit_screen study; ``diverges``: function -> how many seeds diverge."""
    rows = frame[frame["proxy"] == "vit"].copy()
    rows["proxy"] = "vit_screen"
    rows["status"] = "ok"
    rows["score"] = rows["score"][::-1].to_numpy()  # a screen's scores are noise: they must not matter
    for name, count in diverges.items():
        seeds = sorted(rows.loc[rows["candidate"] == name, "seed"])[:count]
        rows.loc[(rows["candidate"] == name) & rows["seed"].isin(seeds), "status"] = "diverged"
    return rows


def test_a_screen_only_demotes_what_diverges_on_it_and_its_scores_never_count() -> None:
    frame = results_frame()
    plain, _ = aggregate_ranking(frame, bootstrap=0)
    best = plain["candidate"].iloc[0]
    screened, text = aggregate_ranking(pd.concat([frame, _screen_rows(frame, {best: 2, "tanh": 1})]), bootstrap=0)
    assert text.endswith("a function that diverges on the screen vit_screen (half its seeds or more) "
                         "ranks below every function that does not")
    # the best function diverged on 2 of 3 screen seeds: last, with its mean rank unchanged;
    # tanh diverged on 1 of 3 (less than half): it keeps its place; the rest keep their order
    assert screened["candidate"].iloc[-1] == best and bool(screened["screened_out"].iloc[-1])
    mean_rank = {name: table.set_index("candidate")["aggregate_score"]
                 for name, table in (("plain", plain), ("screened", screened))}
    assert mean_rank["screened"][best] == mean_rank["plain"][best]
    assert list(screened["candidate"].iloc[:-1]) == [c for c in plain["candidate"] if c != best]
    assert "rank_vit_screen" not in screened and list(screened["screen_vit_screen"].iloc[-1:]) == [1.0]
    assert list(screened["aggregate_rank"]) == sorted(screened["aggregate_rank"])
    # nothing diverged on the screen: the aggregate is the plain one, whatever the screen scored
    same, _ = aggregate_ranking(pd.concat([frame, _screen_rows(frame, {})]), bootstrap=0)
    assert list(same["candidate"]) == list(plain["candidate"])


def test_a_screen_has_no_metric_or_weight_to_declare() -> None:
    base = "name: a\ncandidates: {functions: [isru]}\nproxies: {vit: {}, vit_screen: {}}\nseeds: [0]\n"
    with pytest.raises(ConfigError, match=r"a.yaml:5: aggregate.weights.vit_screen: vit_screen is a stability "
                                          r"screen: the aggregate reads only its divergences"):
        parse_search_config(base + "aggregate: {weights: {vit_screen: 2}}\n", "a.yaml")
