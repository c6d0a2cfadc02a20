"""Training data in S3: tasks.data.storage and the CLI against a real S3-compatible server (moto) on
loopback, with the credentials kept out of every record and message."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import dataset_path, load

from tasks.errors import DataError, StorageError
from tasks.data.storage import mask_secrets, public_url, read_table

BUCKET = "automl-data"
REGION = "us-east-1"
DUMMY = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
         "AWS_DEFAULT_REGION": REGION}
AUTOML = [sys.executable, "-m", "flows.cli"]
# End-to-end runs test storage, not the search: the quickest family, two folds.
FAST = ("--iterations", "3", "--allowed-models", "logistic_regression", "--cv", "2",
        "--no-ensembling")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto in server mode on 127.0.0.1 (~0.3 s), one bucket holding the shared test tables."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    for key, body in _objects().items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    yield endpoint
    server.stop()


def _objects() -> dict[str, bytes]:
    titanic = load("titanic").head(60).to_csv(index=False).encode()
    credit = load("credit_g")
    objects = {
        "credit_g.parquet": dataset_path("credit_g").read_bytes(),
        "titanic.csv": titanic,
        "titanic.csv.gz": gzip.compress(titanic),
        "empty.csv": b"",
    }
    # A folder of part files as Spark or Dask write it; in order, so it reads back as one table.
    for i, rows in enumerate(np.array_split(np.arange(len(credit)), 3)):
        buffer = io.BytesIO()
        credit.iloc[rows].to_parquet(buffer, index=False)
        objects[f"credit_parts/part-{i:05d}.parquet"] = buffer.getvalue()
    return objects


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Dummy credentials for this test only; the endpoint as storage_options."""
    for name, value in DUMMY.items():
        monkeypatch.setenv(name, value)
    return {"client_kwargs": {"endpoint_url": s3_endpoint}}


@pytest.fixture
def moto_checks_credentials() -> Iterator[None]:
    """moto accepts any key unless told to authenticate; then only keys it issued pass."""
    from moto import settings
    from moto.core import ActionAuthenticatorMixin

    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before


@pytest.mark.parametrize(
    ("key", "local"),
    [
        ("credit_g.parquet", lambda tmp: str(dataset_path("credit_g"))),
        ("titanic.csv", lambda tmp: _local_csv(tmp)),
        ("titanic.csv.gz", lambda tmp: _local_csv(tmp)),
        ("credit_parts/", lambda tmp: str(dataset_path("credit_g"))),
        ("credit_parts", lambda tmp: str(dataset_path("credit_g"))),
    ],
    ids=["parquet", "csv", "csv.gz", "parquet-folder/", "parquet-folder"],
)
def test_read_table_from_s3_equals_the_local_read(s3, tmp_path, key, local):
    remote = read_table(f"s3://{BUCKET}/{key}", storage_options=s3)
    pd.testing.assert_frame_equal(remote, read_table(local(tmp_path)))


def _local_csv(tmp: Path) -> str:
    path = tmp / "titanic.csv"
    load("titanic").head(60).to_csv(path, index=False)
    return str(path)


def test_endpoint_from_aws_endpoint_url(s3_endpoint, s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    # A fresh client, so the endpoint really comes from the environment.
    options = {"skip_instance_cache": True}
    frame = read_table(f"s3://{BUCKET}/credit_g.parquet", storage_options=options)
    assert frame.shape == (1000, 21)


def test_fmt_overrides_the_name(s3):
    frame = read_table(f"s3://{BUCKET}/credit_parts", storage_options=s3, fmt="parquet")
    assert len(frame) == 1000


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://no-such-bucket/train.parquet",
         r"^training data 's3://no-such-bucket/train\.parquet' was not found: "
         r"bucket 'no-such-bucket' does not exist"),
        ("s3://no-such-bucket/folder/",
         r"^training data 's3://no-such-bucket/folder/' was not found: bucket 'no-such-bucket'"),
        (f"s3://{BUCKET}/missing.csv",
         rf"^training data 's3://{BUCKET}/missing\.csv' was not found; check the path or URL$"),
        (f"s3://{BUCKET}/missing/", rf"^training data 's3://{BUCKET}/missing/' was not found;"),
        (f"s3://{BUCKET}/empty.csv", r"empty\.csv' is not a readable csv file: it is empty$"),
        (f"s3://{BUCKET}/table.xlsx", r"cannot tell the format of 's3://.*/table\.xlsx'"),
    ],
    ids=["bucket", "bucket-folder", "key", "key-folder", "empty", "format"],
)
def test_storage_mistakes_are_sentences(s3, url, message):
    with pytest.raises(DataError, match=message):
        read_table(url, what="training data", storage_options=s3)


def test_wrong_credentials_say_access_denied_without_the_secret(s3, moto_checks_credentials):
    secret = f"canary-{uuid.uuid4().hex}"
    options = {**s3, "key": "AKIANOTAKEYMOTOKNOWS", "secret": secret}
    denied = r"credit_g\.parquet' cannot be read: access denied"
    with pytest.raises(DataError, match=denied) as info:
        read_table(f"s3://{BUCKET}/credit_g.parquet", storage_options=options)
    assert secret not in str(info.value) and "AKIANOTAKEYMOTOKNOWS" not in str(info.value)


def test_unreachable_endpoint_is_a_retried_storage_error(s3):
    from types import SimpleNamespace

    from flows.steps import transient

    options = {"client_kwargs": {"endpoint_url": "http://127.0.0.1:1"},
               "config_kwargs": {"retries": {"max_attempts": 1}}}
    unreachable = r"^data 's3://.*x\.parquet' cannot be reached: "
    with pytest.raises(StorageError, match=unreachable) as info:
        read_table(f"s3://{BUCKET}/x.parquet", storage_options=options)
    assert transient(None, None, SimpleNamespace(data=info.value))
    assert not transient(None, None, SimpleNamespace(data=DataError("not found")))


def test_urls_are_shown_without_credentials():
    assert public_url("s3://AKIA:pa55word@bucket/x.csv") == "s3://bucket/x.csv"
    assert public_url("https://acct.blob.core.windows.net/c/x.csv?sv=1&sig=abc") == (
        "https://acct.blob.core.windows.net/c/x.csv?sv=1"
    )
    assert public_url("/data/x.csv") == "/data/x.csv"
    with pytest.raises(DataError) as info:
        read_table("s3://AKIA:pa55word@bucket/x.xlsx")
    assert "pa55word" not in str(info.value)


def test_serialised_config_masks_credentials():
    from tasks.config import AutoMLConfig

    options = {"key": "AKIA1", "secret": "s3cr3t", "client_kwargs": {"endpoint_url": "http://h:1"}}
    config = AutoMLConfig(training_data="s3://b/t.parquet", target="y", storage_options=options)
    assert config.storage_options == options  # the flow gets the real thing
    assert config.model_dump(mode="json")["storage_options"] == mask_secrets(options) == {
        "key": "***", "secret": "***", "client_kwargs": {"endpoint_url": "http://h:1"}
    }


# --- compression, by suffix, on disk and in S3, read by the flow's own reader -------------------

MAGIC = {".gz": b"\x1f\x8b", ".bz2": b"BZh", ".zst": b"\x28\xb5\x2f\xfd"}


@pytest.mark.parametrize("suffix", list(MAGIC))
@pytest.mark.parametrize("name", ["credit_g.csv", "credit_g.tsv"])
def test_compressed_tables_on_disk_and_in_s3_read_back_equal(s3, tmp_path, name, suffix):
    import fsspec

    from tasks.data.ingest import TableSources, read_tables
    from tasks.config import AutoMLConfig
    from tasks.data.storage import write_table

    credit = load("credit_g")
    for url, options in [(str(tmp_path / f"{name}{suffix}"), None),
                         (f"s3://{BUCKET}/compressed/{name}{suffix}", s3)]:
        write_table(credit, url, storage_options=options)
        with fsspec.open(url, "rb", **(options or {})) as raw:  # no decompression: the bytes
            head = raw.read(4)
        assert head.startswith(MAGIC[suffix]), f"{url} is not {suffix}-compressed"
        config = AutoMLConfig(training_data=url, target="class", storage_options=options)
        pd.testing.assert_frame_equal(read_tables(TableSources.of(config)).train, credit, check_dtype=False)


# --- a Prefect Secret block as the credential source ----------------------------------------------


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither credentials nor an endpoint from the environment: only the block can supply them."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)


def test_secret_block_alone_supplies_endpoint_and_credentials(s3_endpoint, prefect_api, no_aws_env):
    from prefect.blocks.system import Secret

    from tasks.data.ingest import TableSources, read_tables
    from tasks.config import AutoMLConfig

    options = {"key": "testing", "secret": f"canary-{uuid.uuid4().hex}",
               "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": REGION},
               "skip_instance_cache": True}
    Secret(value=options).save("s3-only-secret", overwrite=True)
    config = AutoMLConfig(training_data=f"s3://{BUCKET}/credit_g.parquet", target="class",
                          storage_secret="s3-only-secret")
    assert read_tables(TableSources.of(config)).train.shape == (1000, 21)
    assert options["secret"] not in config.model_dump_json()


def test_explicit_storage_options_win_over_the_secret_block(s3_endpoint, prefect_api, no_aws_env):
    from prefect.blocks.system import Secret

    from tasks.data.credentials import storage_options

    Secret(value={"key": "testing", "secret": "testing",
                  "client_kwargs": {"endpoint_url": "http://127.0.0.1:1", "region_name": REGION}}
           ).save("s3-stale-endpoint", overwrite=True)
    explicit = {"client_kwargs": {"endpoint_url": s3_endpoint}, "skip_instance_cache": True}
    merged = storage_options(explicit, "s3-stale-endpoint")
    frame = read_table(f"s3://{BUCKET}/credit_g.parquet", storage_options=merged)
    assert frame.shape == (1000, 21)
    assert merged["client_kwargs"]["region_name"] == REGION  # nested entries merge, not replace


def test_unknown_or_malformed_secret_block_is_a_sentence(prefect_api):
    from prefect.blocks.system import Secret

    from tasks.data.credentials import storage_options
    from tasks.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^storage_secret 'no-such-block' is not a Secret block"):
        storage_options(None, "no-such-block")
    Secret(value="plain-text-canary").save("not-an-object", overwrite=True)
    with pytest.raises(ConfigError, match=r"must hold a JSON object of storage options") as info:
        storage_options(None, "not-an-object")
    assert "plain-text-canary" not in str(info.value)


# --- the command line, as a pipeline would call it, against the same server ---------------------


@pytest.fixture(scope="module")
def api_url(prefect_api) -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return subprocess.run([*AUTOML, *args], capture_output=True, text=True, cwd=cwd,
                          env={**clean, **env}, timeout=600)


@pytest.mark.slow
def test_train_with_endpoint_from_the_environment(s3_endpoint, api_url, tmp_path):
    done = _cli(
        "train", "--data", f"s3://{BUCKET}/credit_g.parquet", "--target", "class",
        *FAST, "--json", cwd=tmp_path,
        env={**DUMMY, "AWS_ENDPOINT_URL": s3_endpoint, "PREFECT_API_URL": api_url},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["trials"] == 3


@pytest.fixture(scope="module")
def trained_with_secret(s3_endpoint, api_url, tmp_path_factory):
    """A run whose only credentials are the key in --storage-options and the secret in a Prefect
    Secret block, with values easy to search for (verbose: Prefect's logs are captured too)."""
    from prefect.blocks.system import Secret

    canary = uuid.uuid4().hex
    options = {"key": f"AKIA{canary[:12].upper()}", "secret": f"leak-canary-{canary}",
               "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": REGION}}
    Secret(value={"secret": options["secret"]}).save("s3-cli-secret", overwrite=True)
    explicit = {k: v for k, v in options.items() if k != "secret"}
    cwd = tmp_path_factory.mktemp("s3-cli")
    done = _cli(
        "--verbose", "train", "--data", f"s3://{BUCKET}/credit_g.parquet", "--target", "class",
        *FAST, "--model-name", "credit-s3", "--json", "--storage-secret", "s3-cli-secret",
        "--storage-options", json.dumps(explicit), cwd=cwd, env={"PREFECT_API_URL": api_url},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd, options, done, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_no_credential_in_mlflow_files_or_output(trained_with_secret):
    cwd, options, done, _ = trained_with_secret
    secrets = [options["key"].encode(), options["secret"].encode()]
    files = [p for p in (cwd / "automl-runs").rglob("*") if p.is_file()]
    assert (cwd / "automl-runs" / "mlflow.db") in files
    assert any("artifacts" in p.parts for p in files)
    for path in files:
        content = path.read_bytes()
        assert not any(s in content for s in secrets), f"credential found in {path}"
    for stream in (done.stdout, done.stderr):
        assert not any(s.decode() in stream for s in secrets)


@pytest.mark.slow
def test_no_credential_in_the_prefect_flow_run_parameters(trained_with_secret):
    from prefect.client.orchestration import get_client

    _, options, done, _ = trained_with_secret
    with get_client(sync_client=True) as client:
        recorded = json.dumps([run.parameters for run in client.read_flow_runs()])
        logs = " ".join(log.message for log in client.read_logs())
    assert options["client_kwargs"]["endpoint_url"] in recorded  # the run is there, masked
    assert '"storage_secret": "s3-cli-secret"' in recorded  # the name, not the value
    assert "automl-train" in done.stderr and logs  # Prefect's logs were there to search
    for value in (options["secret"], options["key"]):
        assert value not in recorded and value not in logs


@pytest.mark.slow
def test_parent_run_records_the_s3_source_and_a_digest(trained_with_secret):
    from mlflow.tracking import MlflowClient

    cwd, _, _, out = trained_with_secret
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'automl-runs' / 'mlflow.db'}")
    run = client.get_run(out["run_id"])
    [entry] = run.inputs.dataset_inputs
    assert f"s3://{BUCKET}/credit_g.parquet" in entry.dataset.source
    assert entry.dataset.source_type == "s3" and len(entry.dataset.digest) >= 8
    assert {(t.key, t.value) for t in entry.tags} == {("mlflow.data.context", "training")}
    assert run.data.params["training_data"] == f"s3://{BUCKET}/credit_g.parquet"
    assert "storage_options" not in run.data.params


@pytest.mark.slow
def test_predict_reads_and_writes_s3(trained_with_secret):
    cwd, options, _, out = trained_with_secret
    target = f"s3://{BUCKET}/out/pred.parquet"
    done = _cli(
        "predict", "--model", out["model_uri"], "--data", f"s3://{BUCKET}/credit_g.parquet",
        "--output", target, "--storage-options", json.dumps(options), cwd=cwd, env={},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.strip() == f"wrote 1000 predictions to {target}"
    assert options["secret"] not in done.stdout + done.stderr
    scored = pd.read_parquet(target, storage_options=options)
    assert len(scored) == 1000 and set(scored["prediction"]) <= {"good", "bad"}


@pytest.mark.slow
def test_predict_with_only_a_secret_block(trained_with_secret):
    """--storage-secret alone: endpoint and both credentials from the block, none in the env."""
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL

    cwd, options, _, out = trained_with_secret
    Secret(value=options).save("s3-predict-secret", overwrite=True)
    target = f"s3://{BUCKET}/out/pred-secret.csv.zst"
    done = _cli(
        "predict", "--model", out["model_uri"], "--data", f"s3://{BUCKET}/credit_parts/",
        "--output", target, "--storage-secret", "s3-predict-secret", cwd=cwd,
        env={"PREFECT_API_URL": PREFECT_API_URL.value()},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert options["secret"] not in done.stdout + done.stderr
    scored = read_table(target, storage_options=options)
    assert len(scored) == 1000 and "prediction" in scored
