"""Training data in Azure Blob: tasks.data.storage and the CLI against Azurite, the Azure Storage
emulator, on loopback, with the account key kept out of every record and message."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import ROOT, dataset_path, load

from tasks.errors import DataError
from tasks.data.storage import read_table, write_table

CONTAINER = "automl-data"
ACCOUNT = "automlcanary"
# Azurite accepts only the accounts it is given: a fresh key per session, easy to search for.
KEY = base64.b64encode(f"leak-canary-{uuid.uuid4().hex}".encode()).decode()
AUTOML = [sys.executable, "-m", "flows.cli"]
HOW_TO_GET = ("Azure tests need Azurite (npm package 'azurite') and Node.js: install Node.js with "
              "npm, then `make test` installs Azurite into .azurite/")


def _azurite_blob() -> str | None:
    local = ROOT / ".azurite" / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    return found if found and shutil.which("node") else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """azurite-blob on a free 127.0.0.1 port (~1 s), one account whose key is the canary."""
    program = _azurite_blob()
    if program is None:
        if os.environ.get("CI"):
            pytest.fail(f"{HOW_TO_GET} (CI must run them)")
        pytest.skip(HOW_TO_GET)
    port = _free_port()
    log = tmp_path_factory.mktemp("azurite") / "azurite.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [program, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
             "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{KEY}"},
        )
    try:
        _wait_until_listening(server, port, log)
        endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        _upload(_connection_string(endpoint))
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_listening(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"azurite-blob exited with {server.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"azurite-blob did not listen on 127.0.0.1:{port} within 30 s")


def _connection_string(endpoint: str, key: str = KEY) -> str:
    # The shape of Azurite's published development connection string, for our account.
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={endpoint};")


def _upload(connection_string: str) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    container = service.create_container(CONTAINER)
    credit = load("credit_g")
    blobs = {
        "credit_g.parquet": dataset_path("credit_g").read_bytes(),
        "titanic.csv": load("titanic").head(60).to_csv(index=False).encode(),
    }
    for i, rows in enumerate(np.array_split(np.arange(len(credit)), 3)):
        buffer = io.BytesIO()
        credit.iloc[rows].to_parquet(buffer, index=False)
        blobs[f"credit_parts/part-{i:05d}.parquet"] = buffer.getvalue()
    for name, body in blobs.items():
        container.upload_blob(name, body)


@pytest.fixture
def az(azurite: str) -> dict:
    return {"connection_string": _connection_string(azurite)}


@pytest.mark.parametrize(
    ("url", "local"),
    [
        (f"az://{CONTAINER}/credit_g.parquet", "credit_g"),
        (f"abfs://{CONTAINER}/credit_g.parquet", "credit_g"),
        (f"abfs://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/credit_g.parquet", "credit_g"),
        (f"az://{CONTAINER}/credit_parts/", "credit_g"),
        (f"az://{CONTAINER}/titanic.csv", "titanic"),
    ],
    ids=["az", "abfs", "abfs-account-url", "parquet-folder", "csv"],
)
def test_read_table_from_azure_equals_the_local_read(az, url, local):
    expected = load(local).head(60) if local == "titanic" else load(local)
    remote = read_table(url, storage_options=az)
    pd.testing.assert_frame_equal(remote, expected, check_dtype=False)  # read_table downcasts


def test_credentials_from_the_environment(azurite, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", _connection_string(azurite))
    # A fresh filesystem, so the credentials really come from the environment.
    frame = read_table(f"az://{CONTAINER}/credit_g.parquet",
                       storage_options={"skip_instance_cache": True})
    assert frame.shape == (1000, 21)


def test_write_then_read_back(az):
    frame = load("titanic").head(20)
    write_table(frame, f"az://{CONTAINER}/written/t.csv.gz", storage_options=az)
    back = read_table(f"az://{CONTAINER}/written/t.csv.gz", storage_options=az)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("az://no-such-container/train.parquet",
         r"^training data 'az://no-such-container/train\.parquet' was not found: "
         r"container 'no-such-container' does not exist; check the container name"),
        (f"az://{CONTAINER}/missing.csv",
         rf"^training data 'az://{CONTAINER}/missing\.csv' was not found; check the path or URL$"),
        (f"abfs://{CONTAINER}/missing.parquet",
         rf"^training data 'abfs://{CONTAINER}/missing\.parquet' was not found;"),
    ],
    ids=["container", "blob", "blob-parquet"],
)
def test_azure_mistakes_are_sentences(az, url, message):
    with pytest.raises(DataError, match=message):
        read_table(url, what="training data", storage_options=az)


def test_writing_to_a_missing_container_says_so(az):
    with pytest.raises(DataError, match=r"^cannot write 'az://nowhere/p\.csv': container 'nowhere'"):
        write_table(load("titanic").head(5), "az://nowhere/p.csv", storage_options=az)


def test_wrong_key_says_access_denied_without_the_key(azurite):
    wrong = base64.b64encode(b"not-the-account-key-" + uuid.uuid4().bytes).decode()
    options = {"connection_string": _connection_string(azurite, key=wrong)}
    with pytest.raises(DataError, match=r"credit_g\.parquet' cannot be read: access denied; "
                       r"check the credentials \(AZURE_STORAGE_\* variables") as info:
        read_table(f"az://{CONTAINER}/credit_g.parquet", storage_options=options)
    assert wrong not in str(info.value)


def test_malformed_connection_string_names_neither_it_nor_the_key():
    options = {"connection_string": f"AccountKey={KEY};nonsense"}
    with pytest.raises(DataError, match=r"cannot be opened: .*check the URL and the storage") as info:
        read_table(f"az://{CONTAINER}/credit_g.parquet", storage_options=options)
    assert KEY not in str(info.value) and "nonsense" not in str(info.value)


def test_azure_urls_and_messages_are_shown_without_credentials():
    from tasks.data.redact import public_url, scrub

    account_url = f"abfs://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/x.csv"
    assert public_url(account_url) == account_url  # container@account is an address
    assert public_url("az://c/x.csv?sv=2024&sig=abc%3D") == "az://c/x.csv?sv=2024"
    message = f"ValueError: bad connection string 'AccountKey={KEY};BlobEndpoint=h'"
    assert KEY not in scrub(message, "az://c/x.csv", None)


# --- the command line, as a pipeline would call it, against the same emulator -------------------


@pytest.fixture(scope="module")
def api_url(prefect_api) -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    clean["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return subprocess.run([*AUTOML, *args], capture_output=True, text=True, cwd=cwd,
                          env={**clean, **env}, timeout=600)


@pytest.fixture(scope="module")
def trained(azurite, api_url, tmp_path_factory):
    """One run for the whole module, its only credentials in --storage-options (verbose, so
    Prefect's own logs are in the captured output too)."""
    options = {"connection_string": _connection_string(azurite)}
    cwd = tmp_path_factory.mktemp("az-cli")
    done = _cli(
        "--verbose", "train", "--data", f"az://{CONTAINER}/credit_g.parquet", "--target", "class",
        "--iterations", "3", "--allowed-models", "logistic_regression", "--cv", "2",
        "--no-ensembling", "--model-name", "credit-az", "--json",
        "--storage-options", json.dumps(options), cwd=cwd, env={"PREFECT_API_URL": api_url},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd, done, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_train_from_azure_registers_a_model(trained):
    from mlflow.tracking import MlflowClient

    cwd, _, out = trained
    assert out["trials"] == 3 and out["model_uri"].startswith("models:/credit-az/")
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'automl-runs' / 'mlflow.db'}")
    assert client.get_registered_model("credit-az").latest_versions


@pytest.mark.slow
def test_no_account_key_in_mlflow_files_output_or_prefect(trained):
    from prefect.client.orchestration import get_client

    cwd, done, _ = trained
    files = [p for p in (cwd / "automl-runs").rglob("*") if p.is_file()]
    assert (cwd / "automl-runs" / "mlflow.db") in files
    assert any("artifacts" in p.parts for p in files)
    for path in files:
        assert KEY.encode() not in path.read_bytes(), f"account key found in {path}"
    assert "automl-train" in done.stderr  # Prefect's own log lines were captured
    assert KEY not in done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        recorded = json.dumps([run.parameters for run in runs])
        logs = " ".join(log.message for log in client.read_logs())
    assert f"az://{CONTAINER}/credit_g.parquet" in recorded  # the run is there, masked
    assert logs and KEY not in recorded and KEY not in logs


@pytest.mark.slow
def test_parent_run_records_the_azure_source_and_a_digest(trained):
    from mlflow.tracking import MlflowClient

    cwd, _, out = trained
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'automl-runs' / 'mlflow.db'}")
    run = client.get_run(out["run_id"])
    [entry] = run.inputs.dataset_inputs
    assert json.loads(entry.dataset.source) == {"url": f"az://{CONTAINER}/credit_g.parquet"}
    assert entry.dataset.source_type == "fsspec" and len(entry.dataset.digest) >= 8


@pytest.mark.slow
def test_predict_reads_and_writes_azure_with_env_credentials(trained, azurite):
    cwd, _, out = trained
    target = f"az://{CONTAINER}/out/pred.parquet"
    done = _cli(
        "predict", "--model", out["model_uri"], "--data", f"az://{CONTAINER}/credit_g.parquet",
        "--output", target, cwd=cwd,
        env={"AZURE_STORAGE_CONNECTION_STRING": _connection_string(azurite)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.strip() == f"wrote 1000 predictions to {target}"
    assert KEY not in done.stdout + done.stderr
    scored = read_table(target, storage_options={"connection_string": _connection_string(azurite)})
    assert len(scored) == 1000 and set(scored["prediction"]) <= {"good", "bad"}


@pytest.mark.slow
def test_predict_bad_key_is_one_line_and_exit_2(trained, azurite):
    cwd, _, out = trained
    wrong = base64.b64encode(b"wrong-key-" + uuid.uuid4().bytes).decode()
    done = _cli(
        "predict", "--model", out["model_uri"], "--data", f"az://{CONTAINER}/credit_g.parquet",
        "--output", f"az://{CONTAINER}/out/p.csv", cwd=cwd,
        env={"AZURE_STORAGE_CONNECTION_STRING": _connection_string(azurite, key=wrong)},
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and wrong not in done.stderr
    assert "access denied" in done.stderr
