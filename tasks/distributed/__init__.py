"""Distributed training (training_mode="distributed"): LightGBM and XGBoost data-parallel on a
Dask cluster, from a Dask DataFrame read partition by partition from Parquet, each worker holding
only its own partitions and nothing whole on the client. cluster: the cluster; data: the table
on it, checked, encoded and split; rounds: a trial's rounds, sized before it starts; boosting: one
trial, fitted and scored there; model: the single-node model; registry: its version and alias."""
