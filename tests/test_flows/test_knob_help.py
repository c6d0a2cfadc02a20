"""`automl train --help` from the configuration's descriptions (flows.knob_help); building and
parsing the command line stays free of the heavy libraries."""

from __future__ import annotations

import argparse
import subprocess
import sys

from flows.arguments import parser
from tasks.knobs import Knobs
from tasks.metrics import METRICS
from tasks.models.families import FAMILIES

HEAVY = ("pandas", "sklearn", "mlflow", "prefect", "pydantic")


def _train() -> argparse.ArgumentParser:
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_every_option_of_train_help_has_a_text_and_the_names():
    train = _train()
    text = train.format_help()
    options = [a for a in train._actions if a.option_strings and a.dest != "help"]
    assert len(options) == 45
    for action in options:
        assert action.help and action.help.strip(), action.option_strings
        if action.dest in Knobs.model_fields:
            description = Knobs.model_fields[action.dest].description
            assert action.help.replace("%%", "%").startswith(
                description if action.const is not False else "turns this off: ")
            assert "(default: " in action.help or "(required)" in action.help
    flat = " ".join(text.split())
    for name in [*METRICS, *(f.name for f in FAMILIES.values())]:
        assert name in flat, name
    for group in ("data:", "task and metric:", "limits:", "validation and test:",
                  "models and search:", "resources:", "tracking and registry:", "storage:",
                  "output:"):
        assert f"\n{group}\n" in text
    assert "(default: 1000)" in flat and "(default: automl-runs)" in flat
    assert train.format_help() == text  # shown twice, filled once


def test_building_and_parsing_the_command_line_loads_no_heavy_library():
    script = ("import sys\nfrom flows.arguments import parser\n"
              "parser().parse_args(['train', '--data', 'x.csv', '--target', 'y'])\n"
              f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
