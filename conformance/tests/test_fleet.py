"""Fleet conformance (`opdispatch_conformance.fleet`) on a local three-node Ray cluster on 127.0.0.1.

Node 1 alone imports the test plugins opdispatch-fake, opdispatch-stuck and opdispatch-broken-import
(pip-installed into a directory that only its raylet's PYTHONPATH names), so ``fake:0`` and
``stuck:0`` (whose relu kernel hangs) exist on that node only, and only there a backend fails to
load. Node 2 is killed by the lost-node test, which runs last. Without Ray the cluster tests skip with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from opdispatch_conformance import fleet, report
from opdispatch_conformance.cli import main as conformance_main
from opdispatch_conformance.runner import PASSED
from pip_plugins import install

SPEC = {"ops": ["relu", "add"], "random": 2, "seed": 0, "onnx": False, "gradients": "yes", "mode": "eager"}


def test_ray_is_not_imported_by_the_core_nor_the_suite():
    code = ("import sys, opdispatch, opdispatch_conformance.cli, opdispatch_conformance.fleet; "
            "sys.exit('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_without_ray_the_command_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert conformance_main(["--ray", "--all", "--ops", "relu"]) == 2
    assert "pip install 'opdispatch[ray]'" in capsys.readouterr().err


def test_node_resources_name_every_local_device():
    import opdispatch as od

    assert fleet.node_resources() == {f"opdispatch:{d}": 1.0 for d in od.devices()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'opdispatch[ray]'): fleet tests skip")
    root = tmp_path_factory.mktemp("fleet")
    install(["opdispatch-fake", "opdispatch-stuck", "opdispatch-broken-import"], root / "fake-only-here", root)
    nodes = [{"num_cpus": 1}, {"num_cpus": 1, "env_vars": {"PYTHONPATH": str(root / "fake-only-here")}},
             {"num_cpus": 1}]
    with fleet.LocalCluster(nodes) as c:
        yield c


@pytest.fixture(scope="module")
def probed(cluster):
    import ray

    return fleet.probe_nodes(ray, out=None)


def _node(columns, device):
    return sorted({c.node_id for c in columns if c.device == device})


@pytest.mark.ray
def test_probe_finds_every_node_and_the_device_of_one_node_only(cluster, probed):
    columns, failed = probed
    assert failed == {}
    ids = [n.node_id for n in cluster.nodes]
    assert _node(columns, "numpy:0") == sorted(ids)
    assert _node(columns, "fake:0") == [ids[1]] and _node(columns, "stuck:0") == [ids[1]]
    fake = next(c for c in columns if c.device == "fake:0")
    assert (fake.backend, fake.device_name, fake.dtypes, fake.ip) == ("fake", "Fake accelerator", ("float32",),
                                                                     "127.0.0.1")
    assert fake.resource == "opdispatch:fake:0"  # declared by its node: runs on it never overlap
    assert len({c.label for c in columns}) == len(columns)  # three nodes on one host: labels still distinct


@pytest.mark.ray
def test_fleet_results_equal_a_local_run_on_that_device(cluster, probed):
    import ray

    columns = [c for c in probed[0] if c.device in ("numpy:0", "fake:0") and c.node_id != cluster.nodes[2].node_id]
    runs = fleet.run_fleet(ray, columns, SPEC, out=None)
    local = fleet.run_here("numpy:0", SPEC)
    for col in columns:
        run = runs[col.label]
        assert "lost" not in run and run["node"]["node_id"] == col.node_id
        if col.device == "numpy:0":
            assert [r.to_dict() for r in run["results"]] == [r.to_dict() for r in local["results"]]
    fake = runs[next(c.label for c in columns if c.device == "fake:0")]
    assert {r.op for r in fake["results"] if r.status == PASSED} >= {"add", "relu"}  # its five ops only
    merged = report.json_report(runs)
    assert set(merged["devices"]) == {c.label for c in columns}
    assert merged["devices"][columns[0].label]["node"]["host"] == columns[0].host
    md = report.markdown(runs)
    assert all(c.label in md for c in columns) and "Fake accelerator" in md


@pytest.mark.ray
def test_each_column_records_its_driver_providers_and_the_backends_its_node_could_not_load(cluster, probed):
    import ray

    columns = [c for c in probed[0] if c.device in ("numpy:0", "fake:0") and c.node_id != cluster.nodes[2].node_id]
    runs = fleet.run_fleet(ray, columns, SPEC, out=None)
    merged, md = report.json_report(runs)["devices"], report.markdown(runs)
    fake = next(c.label for c in columns if c.device == "fake:0")
    assert merged[fake]["device"]["driver"] == {"fake driver": "0.1.0"}  # from node 1's own plugin
    assert merged[fake]["providers"] == {} and "- Driver: fake driver: 0.1.0" in md
    for col in (c for c in columns if c.device == "numpy:0"):
        driver = merged[col.label]["device"]["driver"]
        assert driver["numpy"] == np.__version__ and driver["blas"]
        if importlib.util.find_spec("threadpoolctl"):  # the task's BLAS threads: Ray's num_cpus=1
            assert driver["blas at run time"].endswith(", 1 thread)"), driver
        local = fleet.run_here("numpy:0", SPEC)["providers"]  # e.g. onednn, where it is installed
        assert merged[col.label]["providers"] == local
        assert all(f"{name} {version}" in md for name, version in local.items())
    not_loaded = merged[fake]["node"]["backends_not_loaded"]
    assert "import failed" in not_loaded["broken_import"] and "opdispatch_nonexistent_runtime_lib" in \
        not_loaded["broken_import"]
    head = next(c.label for c in columns if c.node_id == cluster.nodes[0].node_id)
    assert "broken_import" not in merged[head]["node"]["backends_not_loaded"]  # node 1's plugin only
    assert "- Backends not loaded on that node: broken_import (failed: " in md
    lost = fleet.lost_run(next(c for c in columns if c.device == "fake:0"), "eager", "NodeDiedError: gone")
    lost_report = report.json_report({fake: lost})["devices"][fake]
    assert lost_report["device"]["driver"] == {"fake driver": "0.1.0"}  # a lost column keeps the probe's facts


@pytest.mark.ray
def test_a_failed_task_marks_its_column_lost_and_keeps_the_others(cluster, probed):
    import dataclasses

    import ray

    head = [c for c in probed[0] if c.node_id == cluster.nodes[0].node_id and c.device == "numpy:0"][0]
    wrong = dataclasses.replace(head, device="fake:0", resource=None, label="head:fake:0")  # not on the head
    runs = fleet.run_fleet(ray, [head, wrong], SPEC, out=None)
    assert "lost" not in runs[head.label] and runs[head.label]["results"]
    assert runs["head:fake:0"]["lost"].startswith("RayTaskError")
    assert "fake:0" in runs["head:fake:0"]["lost"]
    assert report.matrix(runs).splitlines()[2].startswith("| add | LOST | ok ")  # columns in label order


@pytest.mark.ray
def test_the_command_writes_one_merged_report(cluster, tmp_path, capsys):
    out = tmp_path / "fleet.json"
    md = tmp_path / "fleet.md"
    code = conformance_main(["--ray", cluster.address, "--device", "fake:0", "--ops", "relu", "--random", "1",
                             "--no-onnx", "--report", str(out), "--markdown", str(md)])
    err = capsys.readouterr().err
    assert code == 0, err
    data = json.loads(out.read_text())
    (label,) = data["devices"]
    assert label.endswith(":fake:0") and data["devices"][label]["node"]["node_id"] == cluster.nodes[1].node_id
    assert "fleet: [1/1]" in err and "# opdispatch conformance report" in md.read_text()


@pytest.mark.ray
def test_a_hung_task_times_out_is_cancelled_and_the_other_columns_are_kept(cluster, tmp_path, capsys):
    import ray

    on_node1 = fleet._pinned(ray, cluster.nodes[1].node_id)

    @ray.remote(num_cpus=1)
    def hold(seconds: float):  # node 1's one CPU, for ``seconds``
        yield "running"
        time.sleep(seconds)
        yield "done"

    blocker = hold.options(scheduling_strategy=on_node1).remote(5.0)
    assert ray.get(next(blocker), timeout=60) == "running"
    out, md = tmp_path / "fleet.json", tmp_path / "fleet.md"
    start = time.monotonic()
    code = conformance_main(["--ray", cluster.address, "--device", "fake:0", "--device", "stuck:0", "--ops", "relu",
                             "--random", "1", "--no-onnx", "--gradients", "no", "--task-timeout", "3",
                             "--report", str(out), "--markdown", str(md)])
    elapsed = time.monotonic() - start
    captured = capsys.readouterr()
    assert code == 1, captured.err
    data = json.loads(out.read_text())["devices"]
    (stuck,) = [label for label in data if label.endswith(":stuck:0")]
    (fake,) = [label for label in data if label.endswith(":fake:0")]
    assert data[stuck]["lost"] == "timed out after 3 s (the task was cancelled)"
    # fake:0 waited longer than 3 s for the CPU (the blocker's, then maybe the hung task's): not counted
    assert "lost" not in data[fake] and data[fake]["totals"]["passed"] > 0
    assert "LOST: timed out after 3 s" in captured.out and "LOST: timed out after 3 s" in md.read_text()
    # cancelled, not left to sleep its 120 s on node 1's one CPU
    assert elapsed < 60

    @ray.remote(num_cpus=1)
    def free() -> bool:
        return True

    assert ray.get(free.options(scheduling_strategy=on_node1).remote(), timeout=30)


def test_the_task_timeout_is_checked_before_connecting(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # no connection is tried: Ray is not even imported
    assert conformance_main(["--ray", "--all", "--task-timeout", "0"]) == 2
    assert "argument 'task_timeout' got 0.0; allowed: seconds > 0" in capsys.readouterr().err
    from opdispatch_conformance.cli import parser

    assert "--task-timeout SECONDS" in parser().format_help()
    assert parser().parse_args([]).task_timeout == fleet.DEFAULT_TASK_TIMEOUT_S


@pytest.mark.ray
def test_a_lost_node_marks_its_columns_lost(cluster, probed):  # last: it kills node 2
    import ray

    victim = cluster.nodes[2].node_id
    columns = [c for c in probed[0] if c.device == "numpy:0"]
    cluster.remove(2)
    runs = fleet.run_fleet(ray, columns, SPEC, out=None)
    for col in columns:
        if col.node_id == victim:
            assert runs[col.label]["lost"], runs[col.label]
        else:
            assert "lost" not in runs[col.label] and runs[col.label]["results"]


def test_a_lost_column_fails_the_command_and_shows_in_every_report(tmp_path, capsys):
    from opdispatch_conformance.cli import parser, report_runs

    col = fleet.Column(node_id="n" * 56, host="lab1", ip="10.0.0.7", device="cupy:0", backend="cupy",
                       backend_version="0.1.0 (cupy 14)", device_name="H200", dtypes=("float32",), python="3.11",
                       numpy="2.4", platform="Linux", conformance="0.1.0", label="lab1:cupy:0")
    ok = fleet.run_here("numpy:0", SPEC)
    runs = {"lab0:numpy:0": ok, col.label: fleet.lost_run(col, "eager", "NodeDiedError: the node died")}
    args = parser().parse_args(["--report", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")])
    assert report_runs(args, runs) == 1
    out = capsys.readouterr().out
    assert "LOST: NodeDiedError: the node died" in out and "1 lost: lab1:cupy:0" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["devices"]["lab1:cupy:0"]["lost"] == "NodeDiedError: the node died"
    assert data["devices"]["lab1:cupy:0"]["node"]["device_name"] == "H200"
    md = (tmp_path / "r.md").read_text()
    assert "LOST: NodeDiedError" in md and "Node lab1 (10.0.0.7" in md
