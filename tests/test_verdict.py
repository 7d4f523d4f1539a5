"""The verdict's registry reader on a tiny study of the digits."""

from __future__ import annotations

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
    assert set(table["verdict"]) <= {"for", "against", "mixed"}


def test_the_registry_names_every_experiment_folder():
    folders = {study.folder for study in STUDIES}
    assert {
        "image_classification",
        "sequence_forecasting",
        "tune_short_train_long",
        "operator_learning",
    } <= folders
