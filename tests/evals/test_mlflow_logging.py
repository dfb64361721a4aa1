"""`eval run --mlflow-uri`: a real smoke run logged to a local MLflow store and read back.

One MLflow run per backend with the manifest's params, the aggregate metrics and the run's files;
MLflow's telemetry is off and nothing leaves the machine; without mlflow, or with a tracking store
that fails, the user gets what/where/fix (the results are written all the same).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evals.cli import app
from evals.results import log_mlflow
from evals.runner import RunConfig, run
from retrieval.errors import BadInput, StoreError

# Not imported here: importing mlflow starts its telemetry, which log_mlflow switches off first.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                reason="mlflow-skinny is not installed (test extra)")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("smoke-mlflow")
    results = run(RunConfig(suite="smoke", out=out, backends=["extractive"], checker=False))
    return out, results


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs(uri: str, suite: str = "smoke") -> dict[str, Any]:
    client = _client(uri)
    exp = client.get_experiment_by_name(f"chartdraft-{suite}")
    assert exp is not None
    return {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def test_one_run_per_backend_with_params_metrics_and_files(
    smoke: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, real = smoke
    # A second backend (same drafts, one metric moved) so "one run per backend" is tested without
    # loading a model; extractive is the real run as written to results.json.
    results = copy.deepcopy(real)
    other = copy.deepcopy(results["runs"]["extractive"])
    other["aggregate"]["unsupported_final"]["value"] = 0.25
    results["runs"]["cqe-embedded"] = other
    uri = (tmp_path / "mlruns").as_uri()

    ids = log_mlflow(results, uri, out)

    runs = _runs(uri)
    assert set(runs) == set(results["runs"]) == set(ids)
    man = real["manifest"]
    client = _client(uri)
    for backend, logged in runs.items():
        assert logged.info.run_id == ids[backend]
        assert logged.info.status == "FINISHED"
        p = logged.data.params
        assert p["backend"] == backend
        assert p["git_commit"] == str(man["git_commit"])
        assert p["suite_sha256"] == man["suite"]["sha256"]
        assert p["settings"] == man["settings_fingerprint"]
        want = {k: v["value"] for k, v in results["runs"][backend]["aggregate"].items()
                if v.get("value") is not None}
        assert "unsupported_final" in want
        assert logged.data.metrics == pytest.approx(want)
        names = {a.path for a in client.list_artifacts(logged.info.run_id)}
        assert names == {"results.json", "report.html"}
        got = client.download_artifacts(logged.info.run_id, "results.json", str(tmp_path))
        assert json.loads(Path(got).read_text()) == json.loads((out / "results.json").read_text())
    assert runs["cqe-embedded"].data.metrics["unsupported_final"] == 0.25


def test_cli_logs_the_run(smoke: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(smoke[0], out)  # resumes: nothing is drafted again
    uri = (tmp_path / "mlruns").as_uri()
    r = CliRunner().invoke(app, ["run", "smoke", "--backend", "extractive", "--out", str(out),
                                 "--mlflow-uri", uri])
    assert r.exit_code == 0, r.output
    logged = _runs(uri)["extractive"]
    on_disk = json.loads((out / "results.json").read_text())
    case_error = on_disk["runs"]["extractive"]["aggregate"]["case_error"]["value"]
    assert logged.data.metrics["case_error"] == pytest.approx(case_error)


def test_telemetry_off_and_nothing_leaves_the_machine(
    smoke: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """In a fresh process that MLflow would not take for CI or a test (so telemetry would be on)."""
    out, _ = smoke
    script = """
import ipaddress, json, socket, sys
from pathlib import Path

attempts = []

def outward(address):
    if not isinstance(address, tuple):
        return False  # a unix socket
    try:
        return not ipaddress.ip_address(address[0]).is_loopback
    except ValueError:
        return address[0] not in ("localhost",)

def hook(event, args):
    if event == "socket.connect" and outward(args[1]):
        attempts.append(repr(args[1]))
    elif event == "socket.getaddrinfo" and outward((args[0], args[1])):
        attempts.append(repr(args[:2]))

sys.addaudithook(hook)
from evals.results import log_mlflow

out, uri = Path(sys.argv[1]), sys.argv[2]
results = json.loads((out / "results.json").read_text())
log_mlflow(results, uri, out)
from mlflow.telemetry import get_telemetry_client
from mlflow.telemetry.utils import is_telemetry_disabled

print(json.dumps({"client": get_telemetry_client() is not None,
                  "disabled": is_telemetry_disabled(), "attempts": attempts}))
"""
    # MLflow (3.17) turns telemetry off by itself when it sees one of these: drop them all, so
    # the only switch left is ours.
    ci_markers = {"PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CI", "CIRCLECI", "GITLAB_CI",
                  "JENKINS_URL", "TRAVIS", "TF_BUILD", "BITBUCKET_BUILD_NUMBER",
                  "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION", "CLOUD_RUN_EXECUTION",
                  "RUNBOT_HOST_URL", "RUNBOT_BUILD_NAME", "RUNBOT_WORKER_ID",
                  "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"}
    env = {k: v for k, v in os.environ.items() if k not in ci_markers}
    uri = (tmp_path / "mlruns").as_uri()
    proc = subprocess.run([sys.executable, "-c", script, str(out), uri], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"client": False, "disabled": True, "attempts": []}
    assert set(_runs(uri)) == {"extractive"}


def test_without_mlflow_the_cli_says_what_where_fix(
    smoke: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    out, results = smoke
    with pytest.raises(BadInput) as err:
        log_mlflow(results, (tmp_path / "mlruns").as_uri(), out)
    assert err.value.where == "--mlflow-uri" and "mlflow-skinny" in (err.value.fix or "")

    run_out = tmp_path / "run"
    shutil.copytree(out, run_out)
    r = CliRunner().invoke(app, ["run", "smoke", "--backend", "extractive", "--out",
                                 str(run_out), "--mlflow-uri", (tmp_path / "m").as_uri()])
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit)  # a reported error, not a traceback
    assert "MLflow is not installed" in r.output and "--mlflow-uri" in r.output
    assert (run_out / "results.json").exists() and not (tmp_path / "m").exists()


def test_a_failing_tracking_store_says_what_where_fix(
    smoke: tuple[Path, dict[str, Any]]
) -> None:
    out, results = smoke
    with pytest.raises(StoreError) as err:
        log_mlflow(results, "nosuchscheme://store", out)
    assert "nosuchscheme://store" in (err.value.where or "") and err.value.fix
    assert str(out / "results.json") in err.value.detail
