"""The search: the candidate types, the spaces and the portfolio, the Optuna study that holds the
search's state, one trial's evaluation, the worker processes that run trials, and the loop."""
