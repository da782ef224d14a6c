"""Fidelity against a reference set, checked on a case computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from funcsearch.errors import DataError, ExpressionError
from funcsearch.fidelity import measure_fidelity
from funcsearch.references import load_reference, paper_formula_to_expression


def _reference(tmp_path: Path) -> Path:
    path = tmp_path / "ref.csv"
    path.write_text(
        "study,name,expression,value,failed\n"
        "s1,A,erf(x),82,no\n"
        "s1,B,tanh(x),81,no\n"
        "s2,C,2/pi*atan(x),80,no\n"
        "s2,D,erf(x+2),,yes\n"
    )
    return path


def _trials() -> pd.DataFrame:
    rows = []
    # expressions spelled differently from the reference: the join is by fingerprint
    values = {"erf(x + 0)": [0.95, 0.97], "tanh(x)": [0.93, 0.95], "2*atan(x)/pi": [0.96, 0.98],
              "erf(2 + x)": [None, None]}
    for expression, scores in values.items():
        for seed, score in enumerate(scores):
            rows.append({"proxy": "vit", "expression": expression, "candidate": expression, "seed": seed,
                         "status": "diverged" if score is None else "ok",
                         "score": float("nan") if score is None else score,
                         "higher_is_better": True, "primary_metric": "test_acc"})
    # a trial of another proxy and a failed (crashed) trial must be ignored
    rows.append({"proxy": "dit", "expression": "erf(x)", "candidate": "erf", "seed": 0, "status": "ok",
                 "score": 1.0, "higher_is_better": False, "primary_metric": "fid"})
    rows.append({"proxy": "vit", "expression": "tanh(x)", "candidate": "tanh", "seed": 2, "status": "failed",
                 "score": float("nan"), "higher_is_better": True, "primary_metric": "test_acc"})
    return pd.DataFrame(rows)


def test_fidelity_matches_a_hand_computed_case(tmp_path: Path) -> None:
    report = measure_fidelity(_trials(), load_reference(_reference(tmp_path)), proxy="vit", top_k=2)
    # proxy order C > A > B > D(failed); reference A > B > C > D(failed)
    # Spearman: rank differences A 1, B 1, C 2, D 0 -> 1 - 6*6/(4*15) = 0.4
    assert report.spearman.estimate == pytest.approx(0.4)
    # Kendall: 4 concordant, 2 discordant pairs of 6 -> 1/3
    assert report.kendall.estimate == pytest.approx(1 / 3)
    # both seeds give the same order, but the bootstrap resamples the 4 functions too: an
    # interval over seeds only would be [+0.40, +0.40], a certainty 4 functions cannot give
    assert report.spearman.low < 0.4 < report.spearman.high
    assert report.spearman.high - report.spearman.low > 0.5
    # Fisher-z: n = 4 gives se = sqrt(1.06) and a wide interval around 0.4
    assert report.spearman_fisher.low < 0 < 0.4 < report.spearman_fisher.high
    assert report.top_k_overlap == pytest.approx(0.5)  # {A, B} vs {C, A}
    assert (report.reference_failures, report.failures_caught) == (1, 1)
    assert (report.proxy_failures, report.false_alarms) == (1, 0)
    assert report.failure_agreement == pytest.approx(1.0)
    assert report.n_shared == 4 and report.n_seeds == 2
    by_study = {p.study: p for p in report.patterns}
    assert by_study["s2"].reproduced and by_study["s2"].caught == ["erf(2 + x)"]  # the search's name for D
    # s1 has no failures: its "bad" set is its worst working function (B), which is the
    # proxy's worst of the two as well
    assert by_study["s1"].reference_bad == ["tanh(x)"] and by_study["s1"].reproduced  # B
    assert "Spearman" in report.to_markdown()
    # within each study the proxy orders its two functions as the reference does (C above the
    # failed D); turned round in s1 (B above A), that study's Spearman is -1 and s2's stays +1
    assert (by_study["s1"].spearman, by_study["s2"].spearman) == pytest.approx((1.0, 1.0))
    trials = _trials()
    trials.loc[trials["expression"] == "tanh(x)", "score"] += 0.1
    turned = {p.study: p for p in measure_fidelity(trials, load_reference(_reference(tmp_path)),
                                                   proxy="vit", top_k=2).patterns}
    assert (turned["s1"].spearman, turned["s2"].spearman) == pytest.approx((-1.0, 1.0))
    assert turned["s1"].cells()[2] == "-1.00"
    # and its bad function (B) now ranks above the other: separation 1 -> 0 (the pattern backwards)
    assert (by_study["s1"].separation, turned["s1"].separation) == pytest.approx((1.0, 0.0))
    assert turned["s1"].cells()[4] == "0.00"


def test_separation_counts_pairs_ordered_as_the_reference_with_ties_half() -> None:
    from funcsearch.fidelity import separation

    values = np.array([0.1, 0.5, 0.5, -np.inf, 0.9])  # higher = better, a failure at -inf
    assert separation(values, [3], [0, 1, 4]) == pytest.approx(1.0)  # a failure is below all
    assert separation(values, [1], [0, 2, 4]) == pytest.approx((0 + 0.5 + 1) / 3)  # tie counts half
    assert separation(values, [4, 1], [0]) == pytest.approx(0.0)  # both above: read backwards
    assert math.isnan(separation(values, [], [0, 1]))


def test_false_alarm_is_counted_when_the_proxy_fails_a_working_function(tmp_path: Path) -> None:
    trials = _trials()
    trials.loc[trials["expression"] == "tanh(x)", "status"] = "diverged"
    report = measure_fidelity(trials, load_reference(_reference(tmp_path)), proxy="vit", top_k=2)
    assert report.false_alarms == 1
    assert not {p.study: p for p in report.patterns}["s1"].reproduced


def test_markdown_escapes_pipes_in_names_and_says_when_agreement_is_undefined(tmp_path: Path) -> None:
    reference = _reference(tmp_path)
    # no failure on either side, and the missed function's name carries a |
    reference.write_text(reference.read_text().replace("s2,D,erf(x+2),,yes", "s2,D|t=+2,erf(x+2),79,no"))
    trials = _trials()
    trials = trials[trials["expression"] != "erf(2 + x)"]
    trials = pd.concat([trials, pd.DataFrame([
        {"proxy": "vit", "expression": "erf(2 + x)", "candidate": "D|t=+2", "seed": seed, "status": "ok",
         "score": 0.99, "higher_is_better": True, "primary_metric": "test_acc"} for seed in (0, 1)])])
    report = measure_fidelity(trials, load_reference(reference), proxy="vit", top_k=2)
    text = report.to_markdown()
    assert "| failure agreement | n/a (no failures on either side) |" in text
    row = next(line for line in text.splitlines() if line.startswith("| s2 |"))
    assert "D\\|t=+2" in row and row.replace("\\|", "").count("|") == 10  # 9 cells


def test_lower_is_better_metrics_are_negated(tmp_path: Path) -> None:
    trials = _trials()
    trials["score"] = -trials["score"]
    trials["higher_is_better"] = False
    report = measure_fidelity(trials, load_reference(_reference(tmp_path)), proxy="vit", top_k=2)
    assert report.spearman.estimate == pytest.approx(0.4)


def test_study_subset_restricts_the_comparison(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only 2 functions shared"):
        measure_fidelity(_trials(), load_reference(_reference(tmp_path)), proxy="vit", studies=["s1"])


def test_shipped_paper_reference_loads_with_expressions_matching_its_formulas() -> None:
    reference = load_reference()
    table = reference.table
    assert len(table) == 123 and table["failed"].sum() == 22
    assert set(table["study"]) == {"shift", "clip", "mix", "growth", "flatzone", "monotonic"}
    raw = pd.read_csv(reference.source, dtype=str, keep_default_na=False)
    for formula, expression in zip(raw["formula"], raw["expression"]):
        assert paper_formula_to_expression(formula) == expression


def test_paper_notation_is_translated() -> None:
    assert paper_formula_to_expression("sign(u)*|u|**(2/3)") == "sign(x)*abs(x)**(2/3)"
    assert paper_formula_to_expression("flat zone of half-width 1.0 on erf(u)") == "erf((x - clip(x, -1.0, 1.0)))"
    assert paper_formula_to_expression("atan(u)-2") == "2/pi*atan(x)-2"


def test_bad_reference_rows_are_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("study,expression,value,failed\ns,erf(x),82,no\ns,os.system(1),80,no\n")
    with pytest.raises(ExpressionError, match=r"bad.csv:3: expression: 'os' is not an allowed name"):
        load_reference(path)
    path.write_text("study,expression,value,failed\ns,erf(x),high,no\n")
    with pytest.raises(DataError, match=r"bad.csv:2: value: 'high' is not a number"):
        load_reference(path)
    with pytest.raises(DataError, match="reference file not found"):
        load_reference(tmp_path / "missing.csv")


def _results_folder(folder: Path, trials: pd.DataFrame) -> Path:
    """A results folder holding ``trials`` as its consolidated table."""
    import pyarrow.parquet as pq

    from funcsearch.search.store import COLUMNS, ResultsStore, frame_table

    folder.mkdir(parents=True)
    trials = trials.assign(trial_key=[f"k{i}" for i in range(len(trials))])
    for column in COLUMNS:
        if column not in trials:
            trials[column] = None
    pq.write_table(frame_table(trials[list(COLUMNS)]), ResultsStore(folder).consolidated_path)
    return folder


def test_fidelity_command_reads_a_results_folder(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    folder = _results_folder(tmp_path / "results" / "study", _trials())
    command = [sys.executable, "-m", "funcsearch.cli", "fidelity", str(folder), "--reference",
               str(_reference(tmp_path)), "--proxy", "vit", "--top-k", "2", "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    (report,) = json.loads(done.stdout)
    assert report["spearman"] == pytest.approx(0.4) and report["failure_agreement"] == pytest.approx(1.0)
    bad = subprocess.run(command[:5] + ["--reference", str(tmp_path / "nope.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and "reference file not found" in bad.stderr and "Traceback" not in bad.stderr


def _with_shift(trials: pd.DataFrame, shift: str) -> pd.DataFrame:
    return trials.assign(shift=shift)


def test_a_reference_that_states_its_shift_is_compared_with_those_trials_only(tmp_path: Path) -> None:
    reference = _reference(tmp_path)
    reference.write_text("\n".join(line + (",shift" if i == 0 else ",none")
                                   for i, line in enumerate(reference.read_text().splitlines())) + "\n")
    ref = load_reference(reference)
    assert ref.shift == "none"
    # the same expressions run again with a learnable shift score in reverse: if they were
    # mixed in (an s ablation) the proxy order, and so the Spearman, would change
    with_s = _with_shift(_trials(), "scalar")
    with_s["score"] = 2.0 - with_s["score"]
    both = pd.concat([_with_shift(_trials(), "none"), with_s], ignore_index=True)
    report = measure_fidelity(both, ref, proxy="vit", top_k=2)
    assert report.spearman.estimate == pytest.approx(0.4)
    with pytest.raises(ValueError, match="shift=none.*shift=scalar"):
        measure_fidelity(with_s, ref, proxy="vit")
    # a reference that does not say keeps every trial (and so mixes them)
    (tmp_path / "plain").mkdir()
    unstated = measure_fidelity(both, load_reference(_reference(tmp_path / "plain")), proxy="vit", top_k=2)
    assert unstated.spearman.estimate != pytest.approx(0.4)


def test_the_shipped_reference_is_without_the_learnable_shift() -> None:
    assert load_reference().shift == "none"


def test_a_reference_with_two_shifts_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ref.csv"
    path.write_text("expression,value,failed,shift\nerf(x),82,no,none\ntanh(x),81,no,scalar\n")
    with pytest.raises(DataError, match="'shift' must hold one value"):
        load_reference(path)
    path.write_text("expression,value,failed,shift\nerf(x),82,no,sometimes\n")
    with pytest.raises(DataError, match="'sometimes' is not one of none, scalar, vector"):
        load_reference(path)


def test_a_pattern_counts_once_per_study_the_search_ran_and_names_the_search_functions(tmp_path: Path) -> None:
    """A study whose functions the search ran only one of (a shared base) is not a pattern."""
    reference = tmp_path / "ref.csv"
    reference.write_text("study,name,expression,value,failed\n"
                         "s1,A,erf(x),82,no\ns1,B,tanh(x),81,no\ns1,D,erf(x+2),,yes\n"
                         "s2,A,erf(x),82,no\ns2,E,sin(x),,yes\ns2,F,x/(1+x**2),,yes\n")
    trials = _trials()
    report = measure_fidelity(trials, load_reference(reference), proxy="vit", top_k=2)
    assert [p.study for p in report.patterns] == ["s1"]  # s2: only erf of its 3 functions ran
    assert set(report.table["name"]) <= set(trials["candidate"])  # the search's own names


def test_search_references_join_layernorm_by_name_whatever_its_shift() -> None:
    reference = load_reference("paper_search_dit_b4")
    assert not reference.higher_is_better and reference.shift == "scalar"
    assert "norm:layernorm" in set(reference.table["fingerprint"])


def _two_proxies() -> pd.DataFrame:
    """vit orders the functions C > A > B (D diverged), dit (FID, lower is better) A > B > C."""
    trials = _trials()
    trials = trials[trials["proxy"] == "vit"]
    dit = trials.copy()
    dit["proxy"], dit["primary_metric"], dit["higher_is_better"] = "dit", "fid", False
    fid = {"erf(x + 0)": 10.0, "tanh(x)": 20.0, "2*atan(x)/pi": 30.0}
    dit["score"] = [fid.get(e, float("nan")) if s == "ok" else float("nan")
                    for e, s in zip(dit["expression"], dit["status"])]
    both = pd.concat([trials, dit], ignore_index=True)
    both["metrics"] = [f'{{"{m}": {v}}}' if s == "ok" else "{}"
                       for m, v, s in zip(both["primary_metric"], both["score"], both["status"])]
    return both


def test_the_aggregate_rank_is_measured_against_a_reference_like_a_proxy(tmp_path: Path) -> None:
    """Mean ranks of the two proxies: A 1.5, C 2, B 2.5, D 4; against the reference
    A > B > C > D that is a Spearman of 1 - 6*(0 + 1 + 1 + 0)/(4*15) = 0.8."""
    from funcsearch.fidelity import aggregate_fidelity

    report = aggregate_fidelity(_two_proxies(), load_reference(_reference(tmp_path)))
    assert report.n_shared == 4 and report.spearman.estimate == pytest.approx(0.8)
    assert report.proxy == "aggregate" and report.metric == "aggregate rank"


def test_the_pattern_count_says_what_each_seed_alone_reproduces(tmp_path: Path) -> None:
    """A count from one seed can be luck: with several seeds the report gives each seed's own."""
    trials = _trials()
    # seed 1 ranks erf below tanh (s1's worst is tanh at full scale); the seed means still agree
    trials.loc[(trials["expression"] == "erf(x + 0)") & (trials["seed"] == 1), "score"] = 0.93
    trials.loc[(trials["expression"] == "tanh(x)") & (trials["seed"] == 1), "score"] = 0.945
    report = measure_fidelity(trials, load_reference(_reference(tmp_path)), proxy="vit", top_k=2)
    assert report.patterns_reproduced == 2 and report.patterns_by_seed == (2, 1)
    assert "2/2 (each seed alone: 2, 1)" in report.to_markdown()
    assert report.summary()["patterns_by_seed"] == "2,1"
    one_seed = measure_fidelity(trials[trials["seed"] == 0], load_reference(_reference(tmp_path)), proxy="vit")
    assert one_seed.patterns_by_seed == () and one_seed.patterns_text == "2/2"


def test_the_spearman_of_each_seed_alone_is_each_seeds_own_correlation(tmp_path: Path) -> None:
    """Beside the seed mean's Spearman, each seed's: one seed's figure can stray from the mean's."""
    trials = _trials()
    trials.loc[(trials["expression"] == "erf(x + 0)") & (trials["seed"] == 1), "score"] = 0.93
    reference = load_reference(_reference(tmp_path))
    report = measure_fidelity(trials, reference, proxy="vit")
    assert len(report.spearman_by_seed) == report.n_seeds == 2
    for seed, value in zip((0, 1), report.spearman_by_seed):
        alone = measure_fidelity(trials[trials["seed"] == seed], reference, proxy="vit")
        assert value == pytest.approx(alone.spearman.estimate)
        assert alone.spearman_by_seed == ()
    assert report.spearman_by_seed[0] != pytest.approx(report.spearman_by_seed[1])
    assert "| Spearman, each seed alone | " in report.to_markdown()


def test_the_fidelity_of_a_multi_proxy_folder_puts_the_aggregate_first(tmp_path: Path) -> None:
    """`funcsearch fidelity` (and the report) measure the declared aggregate rank too, patterns
    included, before each proxy; one chosen proxy is measured alone."""
    from funcsearch.fidelity import fidelity_of_results

    folder = _results_folder(tmp_path / "study", _two_proxies())
    reference = _reference(tmp_path)
    reports = fidelity_of_results(folder, reference)
    assert [r.proxy for r in reports] == ["aggregate", "dit", "vit"]
    assert reports[0].spearman.estimate == pytest.approx(0.8) and reports[0].patterns
    text = reports[0].to_markdown()
    assert "the aggregate rank" in text and "one value per function: see Fisher-z" in text
    assert [r.proxy for r in fidelity_of_results(folder, reference, proxy="vit")] == ["vit"]


def test_a_fidelity_difference_pairs_the_functions_and_says_its_noise(tmp_path: Path) -> None:
    """B - A on the functions both sides ran: each side's Spearman is measure_fidelity's on
    those functions, identical sides differ by exactly 0, and a side that orders the reference's
    functions as the reference does beats one that reverses them, with an interval."""
    from funcsearch.fidelity import fidelity_difference

    reference = load_reference(_reference(tmp_path))
    a = _trials()
    same = fidelity_difference(a, a, reference, proxy="vit", bootstrap=200)
    assert same.spearman_a == same.spearman_b == pytest.approx(0.4)
    assert same.difference.estimate == 0.0 and same.n_shared == 4 and (same.seeds_a, same.seeds_b) == (2, 2)
    # a side B with the reference's order A > B > C > D(failed), on one seed and one extra function
    rows = [{"proxy": "vit", "expression": e, "candidate": e, "seed": 0, "status": s, "score": v,
             "higher_is_better": True, "primary_metric": "test_acc"}
            for e, s, v in [("erf(x)", "ok", 0.99), ("tanh(x)", "ok", 0.98), ("2*atan(x)/pi", "ok", 0.97),
                            ("erf(x+2)", "diverged", float("nan")), ("x", "ok", 0.5)]]
    b = pd.DataFrame(rows)
    better = fidelity_difference(a, b, reference, proxy="vit", bootstrap=200)
    assert better.n_shared == 4 and better.seeds_b == 1  # x is not in the reference
    assert better.spearman_b == pytest.approx(1.0)
    assert better.difference.estimate == pytest.approx(0.6)
    assert better.difference.low <= 0.6 <= better.difference.high
    assert "B - A +0.60 [" in better.line()
    with pytest.raises(ValueError, match="3 or more"):
        fidelity_difference(a, b[b["expression"] == "x"].assign(expression="erf(x)"), reference, proxy="vit")


def test_compare_with_a_reference_prints_the_fidelity_difference(tmp_path: Path) -> None:
    import subprocess
    import sys

    trials = _trials().assign(unit_key=lambda f: f["proxy"] + ":" + f["candidate"])  # one point per function
    one = _results_folder(tmp_path / "results" / "one", trials)
    two = _results_folder(tmp_path / "results" / "two", trials)
    command = [sys.executable, "-m", "funcsearch.cli", "compare", str(one), str(two), "--proxy", "vit",
               "--reference", str(_reference(tmp_path)), "--format", "md"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "Fidelity vs ref (4 functions run by both; seeds 2 / 2): Spearman A +0.40, B +0.40; B - A +0.00" \
        in done.stdout
    bad = subprocess.run(command[:-4] + ["--reference", str(tmp_path / "nope.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and "reference file not found" in bad.stderr and "Traceback" not in bad.stderr


def test_compare_with_a_reference_measures_each_sides_aggregate_too(tmp_path: Path) -> None:
    """Two multi-proxy folders: their declared aggregates are compared first. The aggregate of
    _two_proxies scores 0.8 against the reference; a side whose dit agrees with vit scores 0.4."""
    from funcsearch.compare import compare_results

    both = _two_proxies().assign(unit_key=lambda f: f["proxy"] + ":" + f["candidate"])
    other = both.copy()
    fid = {"erf(x + 0)": 20.0, "tanh(x)": 30.0, "2*atan(x)/pi": 10.0}  # dit now orders C > A > B, as vit
    dit = other["proxy"] == "dit"
    other.loc[dit, "score"] = [fid.get(e, float("nan")) if s == "ok" else float("nan")
                               for e, s in zip(other.loc[dit, "expression"], other.loc[dit, "status"])]
    other["metrics"] = [f'{{"{m}": {v}}}' if s == "ok" else "{}"  # stored rows are scored from these
                        for m, v, s in zip(other["primary_metric"], other["score"], other["status"])]
    a = _results_folder(tmp_path / "results" / "a", both)
    b = _results_folder(tmp_path / "results" / "b", other)
    comparison = compare_results(a, b, reference=_reference(tmp_path))
    line = comparison.fidelity["aggregate"]
    assert "Spearman A +0.80, B +0.40; B - A -0.40 [" in line and "seeds resampled" not in line
    assert comparison.fidelity["dit"].startswith("Fidelity vs ref (4 functions run by both")
    assert "## aggregate rank (each side's declared rule)" in comparison.render("md")
    alone = compare_results(a, b, proxy="vit", reference=_reference(tmp_path))
    assert set(alone.fidelity) == {"vit"}  # one proxy chosen: no aggregate


def test_a_screen_s_fidelity_line_reads_its_divergences_not_its_scores() -> None:
    """vit's fixture rows copied as a vit_screen study in which tanh diverges on 2 of 3 seeds
    (and erf(x + 2), as on vit, on all): the line names what failed the screen and counts its
    false alarms against the paper tables (tanh trains at full scale), with no Spearman."""
    from fixtures.results_fixture import results_frame
    from funcsearch.fidelity import fidelity_lines

    frame = results_frame()
    screen = frame[frame["proxy"] == "vit"].copy()
    screen["proxy"], screen["trial_key"] = "vit_screen", "screen-" + screen["trial_key"]
    screen.loc[(screen["candidate"] == "tanh") & screen["seed"].isin([0, 1]), "status"] = "diverged"
    lines = [line for line in fidelity_lines(pd.concat([frame, screen], ignore_index=True))
             if line.startswith("Fidelity vit_screen")]
    assert len(lines) == 1 and "Spearman" not in lines[0]
    assert lines[0].startswith("Fidelity vit_screen: a stability screen, read only for its divergences: "
                               "2 of 6 functions failed it (half their seeds or more diverged): "
                               "erf|translate=+2, tanh; vs paper_property_tables.csv"), lines[0]
    assert "2 failed it, 1 of them false alarms (they train at full scale)." in lines[0], lines[0]


def test_what_a_screen_fails_is_a_failure_of_the_aggregate_rank() -> None:
    """The aggregate puts a function the screen failed below every other; its fidelity counts it
    as the aggregate's failure too (before, every aggregate row was 'ok' and the report said
    0 proxy failures whatever the screen did): tanh fails the screen and trains at full scale,
    so it is one failure and one false alarm."""
    from fixtures.results_fixture import results_frame
    from funcsearch.fidelity import aggregate_fidelity, aggregate_rows
    from funcsearch.references import PAPER_REFERENCE

    frame = results_frame()
    screen = frame[frame["proxy"] == "vit"].copy()
    screen["proxy"], screen["trial_key"] = "vit_screen", "screen-" + screen["trial_key"]
    screen["status"] = "ok"
    screen.loc[(screen["candidate"] == "tanh") & screen["seed"].isin([0, 1]), "status"] = "diverged"
    both = pd.concat([frame, screen], ignore_index=True)
    rows = aggregate_rows(both).set_index("candidate")
    assert rows.loc["tanh", "status"] == "diverged" and (rows.drop(index="tanh")["status"] == "ok").all()
    report = aggregate_fidelity(both, load_reference(PAPER_REFERENCE))
    assert report.proxy_failures == 1 and report.false_alarms == 1
    assert "| proxy failures that diverged at full scale too | 0/1 |" in report.to_markdown()
    plain = aggregate_fidelity(frame, load_reference(PAPER_REFERENCE))
    assert plain.proxy_failures == 0  # no screen: the aggregate fails nothing


def test_fidelity_by_epoch_ends_where_the_fidelity_report_does() -> None:
    """benchmarks/fidelity_by_epoch.py on the committed paper_search: where the halving metric is
    the primary one (vit's test_loss, lm's val_bpc) the last epoch's ranking is the final one, so
    its Spearman is the fidelity report's; a screen is not ranked."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("fidelity_by_epoch", root / "benchmarks" / "fidelity_by_epoch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.fidelity_by_epoch(root / "results" / "paper_search", "paper_search_vit_b.csv")
    assert set(table["proxy"]) == {"vit", "dit", "lm"}
    for proxy, epochs in (("vit", 28), ("lm", 10)):
        block = table[table["proxy"] == proxy]
        assert list(block["epoch"]) == list(range(1, epochs + 1))
        assert block["spearman"].iloc[-1] == pytest.approx(block["final_primary"].iloc[0])
        assert block["spearman"].nunique() > 1  # the ranking moves during training


def test_gain_confound_measures_the_gain_stein_s_lemma_gives_and_agrees_with_the_fidelity_report() -> None:
    """benchmarks/gain_confound.py: the Gaussian gain of erf at sigma is (2/sqrt(pi)) /
    sqrt(1 + 2 sigma^2) (Stein's lemma), of x exactly 1, of a function and its negation opposite;
    on the committed paper_search its proxy~reference Spearman is the fidelity report's over the
    same working functions, and the partial Spearman holds the gain fixed."""
    import importlib.util
    import math

    import numpy as np

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("gain_confound", root / "benchmarks" / "gain_confound.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for sigma in (0.5, 1.0, 2.0):
        assert module.gaussian_gain("erf(x)", sigma) == pytest.approx(2 / math.sqrt(math.pi) / math.sqrt(1 + 2 * sigma**2))
        assert module.gaussian_gain("x", sigma) == pytest.approx(1.0)
        assert module.gaussian_gain("-tanh(x)", sigma) == pytest.approx(-module.gaussian_gain("tanh(x)", sigma))
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=200), rng.normal(size=200)
    assert module.partial_spearman(x + z, x - z, z) > 0.9  # what x and y share once z is held fixed
    table = module.gain_table(root / "results" / "paper_search", "paper_search_dit_b4.csv")
    row = table.set_index("proxy").loc["dit"]
    assert row["n"] == 8  # the 8 released functions; LayerNorm has no expression and so no gain
    report = measure_fidelity(module.read_results(root / "results" / "paper_search"),
                              load_reference("paper_search_dit_b4.csv"), proxy="dit", bootstrap=0)
    working = report.table[report.table["name"] != "layernorm"]
    from scipy import stats
    assert row["proxy~reference"] == pytest.approx(
        stats.spearmanr(working["proxy_mean"], -working["reference"]).statistic)


def test_aggregate_weights_grid_covers_ratios_once_and_a_lone_proxy_scores_as_itself() -> None:
    """benchmarks/aggregate_weights.py: equal weights first, then every grid point whose largest
    weight is the grid's largest (5^3 - 4^3 = 61 for three proxies); on the committed paper_search,
    weighting dit alone gives dit's own Spearman with DiT-B/4 (its ranks are the aggregate's)."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("aggregate_weights", root / "benchmarks" / "aggregate_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    points = module.weightings(["dit", "lm", "vit"])
    assert points[0] == {"dit": 1.0, "lm": 1.0, "vit": 1.0}
    assert len(points) == 1 + 61 and all(max(p.values()) == 4.0 for p in points[1:])
    assert len({tuple(p.values()) for p in points}) == len(points)
    search = module.read_results(root / "results" / "paper_search")
    alone = module.AggregateRule(weights={"dit": 4.0, "lm": 0.0, "vit": 0.0})
    reference = load_reference("paper_search_dit_b4.csv")
    dit = measure_fidelity(search, reference, proxy="dit", bootstrap=0)
    assert module.aggregate_fidelity(search, reference, alone).spearman.estimate == pytest.approx(
        dit.spearman.estimate, abs=1e-9)


def test_table_lead_is_the_non_monotonic_mean_minus_the_monotonic_mean_read_from_the_trials() -> None:
    """benchmarks/table_lead.py on the committed property_tables (vit, seed 0): the lead is the
    mean test loss of sin, dampx and dampexp minus that of the six monotonic functions, read here
    straight from the stored rows by name, and LayerNorm is its own stored score."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("table_lead", root / "benchmarks" / "table_lead.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = module.lead_row(root / "results" / "property_tables", "vit", "monotonic", 0)
    frame = module.read_results(root / "results" / "property_tables")
    rows = frame[(frame["proxy"] == "vit") & (frame["seed"] == 0) & (frame["status"] == "ok")]
    loss = rows.groupby("candidate")["score"].mean()
    worst = loss[["sin", "dampx", "dampexp"]].mean()
    rest = loss[["erf", "tanh", "arctan", "negerf", "negtanh", "negarctan"]].mean()
    assert row["lead"] == pytest.approx(worst - rest, abs=1e-3)
    assert row["worst group"] == pytest.approx(worst, abs=1e-3)
    assert row["LayerNorm"] == pytest.approx(loss["layernorm"], abs=1e-3)
    assert row["worst among best"].endswith("/3")
