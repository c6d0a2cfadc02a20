"""Distributed training (training_mode="distributed"): LightGBM and XGBoost data-parallel on a
Dask cluster, from a Dask DataFrame read partition by partition from Parquet, each worker holding
only its own partitions and nothing whole on the client. data: the table on the cluster, checked,
encoded and split; boosting: one trial, fitted and scored there; model: the single-node model the
registry gets."""
