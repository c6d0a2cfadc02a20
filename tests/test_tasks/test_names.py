"""The names the deployment's form offers: equal to the registries, offered as choices in the
flow's parameter schema, while the config takes every spelling the resolvers take."""

from __future__ import annotations

import pytest
from prefect.utilities.callables import parameter_schema

from flows.automl import automl_flow
from tasks.config import parse_config
from tasks.metrics import METRICS, get_metric
from tasks.models.families import FAMILIES, resolve_families
from tasks.names import FAMILY_NAMES, METRIC_NAMES


def test_the_names_are_the_registries_own():
    assert tuple(METRICS) == METRIC_NAMES
    assert tuple(f.name for f in FAMILIES.values()) == FAMILY_NAMES


def test_the_flow_schema_offers_them_as_choices_and_asks_for_the_config_alone():
    schema = parameter_schema(automl_flow).model_dump()
    assert set(schema["properties"]) == {"config"}
    knobs = schema["definitions"]["AutoMLConfig"]["properties"]
    assert knobs["primary_metric"]["anyOf"] == [
        {"enum": list(METRIC_NAMES), "type": "string"}, {"type": "null"}]
    for field in ("allowed_models", "blocked_models"):
        assert knobs[field]["anyOf"][0]["items"] == {"enum": list(FAMILY_NAMES), "type": "string"}


@pytest.mark.parametrize(("metric", "models"), [
    ("auc_weighted", ["xgboostclassifier", "logistic_regression"]),  # any case, Azure's aliases
    ("Accuracy", ["LightGBM"]),
])
def test_the_config_takes_every_spelling_the_resolvers_take(metric, models):
    config = parse_config(training_data="t.csv", target="y", primary_metric=metric,
                          allowed_models=models, blocked_models=["knn"])
    assert get_metric(config.primary_metric, "classification").name.lower() == metric.lower()
    assert resolve_families("classification", config.allowed_models, config.blocked_models)
