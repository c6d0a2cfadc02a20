"""The data guardrail report on real tables: each check finds what it should, and only that."""

from __future__ import annotations

import pandas as pd
import pytest
from support import load

from tasks.config import parse_config
from tasks.data.guardrails import build_report
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data


def report_for(frame, target, validation=None, **knobs):
    config = parse_config(training_data="train.parquet", target=target,
                          validation_data="valid.parquet" if validation is not None else None, **knobs)
    profile = inspect_data(config, frame, validation)
    data, test = split_data(SplitPlan.of(config), profile, frame, validation)
    return {c.name: c for c in build_report(profile, data, test).checks}


@pytest.fixture(scope="module")
def titanic():
    return report_for(load("titanic"), "Survived")


def test_titanic_imputation_and_dropped_columns(titanic):
    missing = titanic["Missing feature values imputation"]
    assert missing.status == "done"
    assert "Age (177)" in missing.detail and "Embarked (2)" in missing.detail
    dropped = titanic["Columns dropped"]
    assert dropped.status == "done" and "Ticket (identifier-like)" in dropped.detail
    assert titanic["Validation split handling"].detail.startswith("5-fold cross-validation because")
    assert titanic["Train/validation drift"].status == "passed"


def test_clean_table_passes(titanic):
    for name in ("Duplicate rows", "Target leakage hint", "Class balancing detection"):
        assert titanic[name].status == "passed", titanic[name]


def test_class_imbalance_is_alerted():
    checks = report_for(load("hypothyroid"), "Class", n_cross_validations=2)
    balance = checks["Class balancing detection"]
    assert balance.status == "alerted"
    assert "balanced class weights are among the searched options" in balance.detail
    counts = load("hypothyroid")["Class"].value_counts()
    assert f"'{counts.idxmin()}' has {counts.min()}" in balance.detail


def test_duplicates_are_counted():
    frame = load("credit_g")
    checks = report_for(pd.concat([frame, frame.head(12)], ignore_index=True), "class")
    assert checks["Duplicate rows"].status == "alerted"
    assert checks["Duplicate rows"].detail.startswith("12 rows repeat")


def test_a_leaking_column_is_named():
    frame = load("credit_g")
    frame["review_outcome"] = frame["class"].map({"good": "approved", "bad": "rejected"})
    leak = report_for(frame, "class")["Target leakage hint"]
    assert leak.status == "alerted"
    assert "review_outcome" in leak.detail and "duration" not in leak.detail


def test_regression_leak_by_a_near_copy_of_the_target():
    frame = load("concrete")
    frame["strength_rounded"] = frame["compressive_strength"].round(0)
    leak = report_for(frame, "compressive_strength")["Target leakage hint"]
    assert leak.status == "alerted" and "strength_rounded" in leak.detail


def test_drift_between_training_and_given_validation():
    frame = load("abalone").sort_values("Whole_weight", ignore_index=True)
    train, valid = frame.iloc[:3000], frame.iloc[3000:]
    drift = report_for(train, "Rings", validation=valid)["Train/validation drift"]
    assert drift.status == "alerted"
    assert "Whole_weight (validation" in drift.detail


def test_no_drift_on_a_random_holdout():
    drift = report_for(load("abalone"), "Rings", validation_size=0.3)["Train/validation drift"]
    assert drift.status == "passed"


def test_text_and_dicts_agree(titanic):
    from tasks.data.guardrails import GuardrailReport

    report = GuardrailReport(tuple(titanic.values()))
    lines = report.to_text().splitlines()
    assert len(lines) == len(report.to_dicts()) == len(titanic)
    assert all(d["status"] in {"passed", "done", "alerted"} for d in report.to_dicts())
