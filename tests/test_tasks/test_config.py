from __future__ import annotations

import re

import pytest

from tasks.data.split import CV_ROW_LIMIT, SplitPlan
from tasks.config import AutoMLConfig, parse_config
from tasks.errors import ConfigError


def test_defaults_follow_azure():
    config = parse_config(training_data="t.csv", target="y")
    assert SplitPlan.of(config).scheme(CV_ROW_LIMIT) == ("cv", 5)
    assert SplitPlan.of(config).scheme(CV_ROW_LIMIT + 1) == ("holdout", 0.10)
    assert config.registered_model_name == config.experiment_name


@pytest.mark.parametrize(
    ("knobs", "scheme"),
    [
        ({"n_cross_validations": 3}, ("cv", 3)),
        ({"validation_size": 0.25}, ("holdout", 0.25)),
        ({"validation_data": "v.csv"}, ("given", 0.0)),
    ],
)
def test_chosen_scheme_wins_over_the_default(knobs, scheme):
    config = parse_config(training_data="t.csv", target="y", **knobs)
    assert SplitPlan.of(config).scheme(100_000) == scheme


def test_two_validation_schemes_are_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="choose one validation scheme.*n_cross_validations"):
        parse_config(training_data="t.csv", target="y", validation_size=0.2, n_cross_validations=3)


@pytest.mark.parametrize(
    ("knob", "value", "message"),
    [
        ("n_cross_validations", 1, r"n_cross_validations=1 is invalid: .*greater than or equal to 2"),
        ("validation_size", 1.5, r"validation_size=1.5 is invalid"),
        ("iterations", 0, r"iterations=0 is invalid"),
        ("experiment_timeout_minutes", -1, r"experiment_timeout_minutes=-1 is invalid"),
        ("task", "clustering", r"task='clustering' is invalid"),
        ("not_a_knob", 1, r"not_a_knob=1 is invalid: Extra inputs are not permitted"),
    ],
)
def test_bad_knob_names_the_knob_and_the_value(knob, value, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(training_data="t.csv", target="y", **{knob: value})


def test_timeout_takes_fractions_of_a_minute():
    assert parse_config(training_data="t", target="y", experiment_timeout_minutes=0.5) \
        .experiment_timeout_minutes * 60 == pytest.approx(30)


def test_config_json_schema_has_descriptions_for_the_ui_form():
    schema = AutoMLConfig.model_json_schema()
    assert {"training_data", "target"} <= set(schema["required"])
    undocumented = [k for k, v in schema["properties"].items() if not v.get("description")]
    assert undocumented == []


def test_no_description_has_a_url_the_form_would_turn_into_a_link():
    # Prefect's form reads descriptions as Markdown: a bare URL becomes a link that swallows the
    # quote after it, shown as &quot;. Inside a code span it stays text.
    schema = AutoMLConfig.model_json_schema()
    for name, knob in schema["properties"].items():
        prose = re.sub(r"`[^`]*`", "", knob["description"])
        assert not re.search(r"https?://|www\.", prose), name
