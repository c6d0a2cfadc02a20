"""automl-flow's test predictions: the .pkl the CLI returned, loaded and scored on the test rows."""

from __future__ import annotations

import pickle

from _common import arguments, features, write_model_predictions


def main() -> None:
    args = arguments()
    with open(args.model, "rb") as handle:
        model = pickle.load(handle)  # noqa: S301 - the model this benchmark just trained
    X_test, _ = features(args.test, args.target)
    write_model_predictions(args.out, model, X_test, args.task)


if __name__ == "__main__":
    main()
