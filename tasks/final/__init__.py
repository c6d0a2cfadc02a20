"""The final model: choose it among the best trial and the ensembles of the best trials, refit it
on all rows, and score it on rows it never saw."""
