"""The verdict's registry reader on a tiny study of the digits."""

from __future__ import annotations

from pathlib import Path

from hyperlr.lab.sweep import expand_grid, run_sweep
from hyperlr.lab.verdict import CLAIMS, STUDIES, Study, claims_table, load_evidence


def test_a_study_becomes_evidence_and_an_absent_one_a_note(tmp_path):
    configs = expand_grid(
        datasets="digits",
        schedulers=["N", "P", "H", "EH"],
        budgets=[1, 2, 3],
        seeds=[0],
        lr=1e-2,
        train_subset=600,
        val_subset=100,
        batch_size=32,
        model_options={"channels": 4, "hidden": 16},
        device="cpu",
    )
    run_sweep(configs, tmp_path / "tiny", progress=False)
    tiny = Study("tiny", "chap-image", "tiny", "digits", "val_accuracy", "accuracy", "CNN")
    absent = Study("absent", "chap-operator", "nowhere", None, "val_loss", "loss", None)
    evidence, skipped = load_evidence(tmp_path, [tiny, absent])
    assert skipped == ["absent: no committed results in results/nowhere"]
    other_model = Study("x", "chap-image", "tiny", "digits", "val_loss", "loss", None, model="mlp")
    assert load_evidence(tmp_path, [other_model])[1] == ["x: no runs of digits mlp in results/tiny"]
    (item,) = evidence
    assert set(item.slcd.index) == {"N", "P", "H", "EH"}
    assert item.scale.loc["epochs (longest budget)", "ours"] == 3
    counted = item.longest()[["n_seeds", "n_diverged"]].sum(axis=1)
    assert counted.tolist() == [1] * 4
    table = claims_table(evidence)
    claims = set(table.index.get_level_values("claim"))
    assert claims == set(CLAIMS) - {"settings tuned short transfer to long budgets"}
    assert set(table["verdict"]) <= {"for", "against", "mixed", "inconclusive"}


def test_the_registry_names_every_experiment_folder():
    folders = {study.folder for study in STUDIES}
    assert {
        "image_classification",
        "sequence_forecasting",
        "tune_short_train_long",
        "operator_learning",
    } <= folders


def test_headline_ties_are_paired_and_claims_can_be_inconclusive(tmp_path):
    import math

    import pandas as pd

    from hyperlr.lab.verdict import (
        GUIDANCE,
        best_or_tied,
        common_ranks,
        guidance_table,
        headline_table,
        slcd_floor,
        vs_best,
    )

    configs = expand_grid(
        datasets="digits",
        schedulers=["N", "P", "C", "H", "EH"],
        budgets=[2, 3, 4],
        seeds=[0, 1, 2],
        lr=1e-2,
        train_subset=300,
        val_subset=100,
        batch_size=32,
        model_options={"channels": 4, "hidden": 16},
        device="cpu",
    )
    run_sweep(configs, tmp_path / "tiny", progress=False)
    tiny = Study("tiny", "chap-image", "tiny", "digits", "val_loss", "loss", "CNN")
    no_n = Study("no N", "chap-image", "tiny", "digits", "val_loss", "loss", "CNN")
    (item,), _ = load_evidence(tmp_path, [tiny])
    table = vs_best(item)
    assert table.index[0] == item.longest().index[0] and table["tied"].iloc[0]
    assert set(table["df"].dropna()) == {2.0} and set(table["p_min"].dropna()) == {0.25}
    tied = (table["low"] <= 1) & (table["high"] >= 1)  # a ratio of losses
    assert (table["tied"].iloc[1:] == tied.iloc[1:]).all()
    assert table["normalized rank"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    headlines = headline_table([item])
    assert headlines.loc["tiny", "best"] == table.index[0]
    assert headlines.loc["tiny", "normalized rank of EH"] == table.loc["EH", "normalized rank"]
    won, ran = best_or_tied([item], ["N", "SF"])
    assert ran == ["tiny"] and won == (["tiny"] if table.loc["N", "tied"] else [])
    # A study without N or SF is not in the denominator.
    item_no_n = load_evidence(tmp_path, [no_n])[0][0]
    item_no_n.runs = item_no_n.runs[item_no_n.runs["scheduler"] != "N"]
    item_no_n.finals = item_no_n.finals[item_no_n.finals["scheduler"] != "N"]
    assert best_or_tied([item, item_no_n], ["N"])[1] == ["tiny"]
    assert list(common_ranks([item, item_no_n]).columns) == ["P", "C", "H", "EH"]
    # An SLCD at or below the floor is never support.
    floor_code, floor = slcd_floor(item.slcd)
    assert floor_code == "N" and floor == item.slcd["N"]
    assert slcd_floor(pd.Series({"P": 0.1}))[0] is None and math.isnan(slcd_floor(pd.Series())[1])
    item.slcd = item.slcd.copy()
    item.slcd["EH"] = floor / 2
    item.slcd["H"] = min(item.slcd["P"], item.slcd["C"]) / 2 + floor
    claims = claims_table([item])
    claim = "epoch-insensitive learning curves (H, EH below P and C in SLCD)"
    assert claims.loc[(claim, "tiny"), "verdict"] == "inconclusive"
    assert claims.loc[("smallest SLCD for EH", "tiny"), "verdict"] == "inconclusive"
    guidance = guidance_table()
    assert len(guidance) == len(GUIDANCE)
    assert set(guidance["backed by"]) <= {"runs", "derivation", "untested"}
    # Every theory reference points at the theory chapter, whose label exists; the rest wait.
    theory_refs = guidance["theory chapter"][guidance["theory chapter"] != "pending"]
    assert len(theory_refs) >= 3 and theory_refs.str.startswith("chap-theory, ").all()
    chapters = Path(__file__).resolve().parents[1] / "chapters"
    chapter = next(chapters.glob("*what_theory_predicts*.ipynb")).read_text()
    assert "(chap-theory)=" in chapter


def test_the_chapters_numbers_come_from_the_verdicts_functions():
    """Chapter 8's way to its numbers and the verdict's give the same values (committed runs)."""

    from hyperlr.lab.analysis import seed_curves, seed_finals, slcd_form, study_slcd
    from hyperlr.lab.results import ResultsStore
    from hyperlr.lab.verdict import headline_table

    root = Path(__file__).resolve().parents[1] / "results"
    untuned = [s for s in STUDIES if s.tuned is None]
    evidence, _ = load_evidence(root, untuned)
    headlines = headline_table(evidence)
    operator = [e for e in evidence if e.study.folder == "operator_learning"]
    if not operator:
        return
    frame = ResultsStore(root / "operator_learning").frame()
    for e in operator:
        runs = frame[frame["model"] == e.study.model]  # chapter 8's runs of one network
        budgets = sorted(set(runs["epochs"]))
        assert e.slcd_form == slcd_form(budgets, "loss")
        chapter_slcd = study_slcd(seed_curves(runs, "val_loss"), "loss")["mean"]
        assert chapter_slcd.sort_index().tolist() == e.slcd.sort_index().tolist()
        final = seed_finals(runs, "val_loss", kind="loss")
        final = final[final["budget"] == max(budgets)].set_index("scheduler")["centre"]
        assert final.idxmin() == headlines.loc[e.study.name, "best"]
        assert final.min() == headlines.loc[e.study.name, "best value"]


def test_the_transfer_tables_arms_equal_the_stage_2_finals(tmp_path):
    """Chapter 7's two tables state one number per schedule at the longest budget (committed)."""
    import shutil

    import pytest

    root = Path(__file__).resolve().parents[1] / "results"
    tuned = [s for s in STUDIES if s.tuned is not None and (root / s.folder).is_dir()]
    if not tuned:
        pytest.skip("no tuned study committed")
    # A copy: loading the studies must not touch the committed SQLite file.
    shutil.copytree(root / tuned[0].folder, tmp_path / tuned[0].folder)
    evidence, _ = load_evidence(tmp_path, tuned)
    for item in evidence:
        longest = item.longest()
        for code, row in item.regret.iterrows():
            if row["diverged"] == 0 and code in longest.index:
                assert row["short-tuned"] == pytest.approx(longest.loc[code, "centre"], rel=1e-12)


def test_updates_span_gives_the_range_of_fewer_and_apart_the_studies_with_more():
    from types import SimpleNamespace

    import pandas as pd

    from hyperlr.lab.verdict import updates_span

    def study(name, factor):
        row = "updates in total (longest budget)"
        scale = pd.DataFrame({"paper / ours": [factor]}, index=[row])
        return SimpleNamespace(study=SimpleNamespace(name=name), scale=scale)

    mixed = [study("a", 83.2), study("b", 310.4), study("op", 1 / 2.4), study("none", 1.0)]
    mixed.append(SimpleNamespace(study=SimpleNamespace(name="unscaled"), scale=None))
    assert updates_span(mixed) == (
        "1.0x to 310x fewer updates than the paper's (a, b, none); 2.4x more (op)"
    )
    assert updates_span([study("a", 83.2)]) == "83x fewer updates than the paper's (a)"
    assert updates_span([]) == "no study with a scale against the paper"
