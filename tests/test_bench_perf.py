"""bench/perf.py: the paired-ratio arithmetic on synthetic timings, and its quick path end to end on
tiny shapes with the peers that are installed (PyTorch and ONNX Runtime are optional: their runs skip
with the reason when absent)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import perf  # noqa: E402


def test_paired_ratios_take_the_median_and_quartiles_of_the_per_round_ratios():
    od_ms = [2.0, 4.0, 6.0, 8.0, 50.0]
    peer_ms = [1.0, 2.0, 2.0, 4.0, 10.0]  # per-round ratios 2, 2, 3, 2, 5
    r = perf.paired_ratios(od_ms, peer_ms)
    assert (r["median"], r["p25"], r["p75"], r["min"], r["max"], r["n"]) == (2.0, 2.0, 3.0, 2.0, 5.0, 5)
    # not the ratio of the medians (6 / 2 = 3): a round's load hits both peers of that round
    assert r["median"] != np.median(od_ms) / np.median(peer_ms)


def test_paired_ratios_interpolate_quartiles_and_refuse_unpaired_series():
    r = perf.paired_ratios([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])
    assert (r["median"], r["p25"], r["p75"]) == (2.5, 1.75, 3.25)
    with pytest.raises(ValueError, match="equally long"):
        perf.paired_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-empty"):
        perf.paired_ratios([], [])


def test_row_figures_pick_the_best_peer_by_median_and_pair_against_it():
    wl = perf.Workload("w", "conv", ((1, 1, 4, 4), (1, 1, 3, 3)), {"stride": 1, "pad": 1}, flops=2e9)
    times = {"od-graph": [10.0, 20.0, 30.0], "od-graph-noprov": [20.0, 60.0, 30.0],
             "torch": [5.0, 10.0, 10.0], "onnxruntime": [20.0, 20.0, 20.0]}
    fig = perf.row_figures(wl, times, peak_gflops=400.0)
    assert fig["best_peer"] == "torch"
    assert fig["peers"]["torch"]["median_ms"] == 10.0
    assert fig["peers"]["torch"]["gflops"] == pytest.approx(200.0)  # 2e9 FLOP in 10 ms
    assert fig["peers"]["torch"]["peak_fraction"] == pytest.approx(0.5)
    assert fig["vs_best"]["od-graph"]["median"] == 2.0  # ratios 2, 2, 3
    assert fig["ratios"]["od-graph/onnxruntime"]["median"] == 1.0  # ratios 0.5, 1, 1.5
    assert fig["vs_best"]["od-graph-noprov"] == fig["ratios"]["od-graph-noprov/torch"]
    gain = fig["provider_gain"]  # no providers / with: 2, 3, 1
    assert (gain["median"], gain["min"], gain["max"]) == (2.0, 1.0, 3.0)
    alone = perf.row_figures(wl, {"od-graph": [1.0, 2.0]}, None)
    assert alone["best_peer"] is None and alone["vs_best"] == {} and alone["provider_gain"] is None
    assert "peak_fraction" not in alone["peers"]["od-graph"]


def test_memory_bound_rows_report_bytes_per_second():
    wl = next(w for w in perf.workloads() if w.name == "maxpool_112")
    assert wl.bytes == 4.0 * (32 * 64 * 112 * 112 + 32 * 64 * 56 * 56)
    fig = perf.row_figures(wl, {"od-graph": [wl.bytes / 1e9 * 1e3]}, None)  # 1 GB/s
    assert fig["peers"]["od-graph"]["gbytes_per_s"] == pytest.approx(1.0)


def test_every_row_of_the_issue_is_kept_and_the_model_rows_added():
    names = [w.name for w in perf.workloads()]
    assert names[:11] == ["conv_a", "conv_b", "conv_c", "conv_d", "conv_a_bwd", "conv_c_bwd", "maxpool_28",
                          "maxpool_112", "bn_train", "matmul", "train_step"]
    assert {"resnet18_b1", "resnet18_b16", "mobilenet_v2_b1", "mobilenet_v2_b16"} <= set(names)
    assert [w.name for w in perf.workloads(tiny=True)] == names


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


ROWS = "conv_a,conv_c_bwd,maxpool_28,bn_train,matmul"


def _run_quick(tmp_path: Path, peers: str, rows: str = ROWS, env: dict | None = None) -> tuple[dict, str]:
    out = tmp_path / "perf.json"
    proc = subprocess.run([sys.executable, str(BENCH / "perf.py"), "--tiny", "--quick", "--rows", rows,
                           "--peers", peers, "--json", str(out), "--no-model-cache"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stdout


def _check_report(report: dict, table: str, peers: list[str]) -> None:
    assert report["peers"] == peers
    assert report["peak"]["gflops"] > 0
    for row in report["rows"]:
        assert row["row"] in table
        ran = list(row["peers"])
        assert set(ran) | set(row["skipped"]) == set(peers), row
        rounds = {len(row["peers"][p]["ms"]) for p in ran}
        assert len(rounds) == 1 and 3 <= rounds.pop() <= 5  # --quick: 3 to 5 rounds, every peer in each
        for a in ran:
            for b in ran:
                key = f"{a}/{b}"
                if key in row["ratios"]:  # recomputed from the stored repetitions
                    pairs = [x / y for x, y in zip(row["peers"][a]["ms"], row["peers"][b]["ms"])]
                    assert row["ratios"][key]["median"] == pytest.approx(float(np.median(pairs)))
        for p, diff in row["max_rel_diff"].items():
            if p != "reference":
                assert diff < 1e-4, (row["row"], p, diff)  # every peer computed the same thing


OPTIONAL = {"torch": "torch", "onnxruntime": "onnxruntime"}  # peer -> the module it needs


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick run on tiny shapes with every peer that is installed: its report and printed table."""
    peers = ["od-eager", "od-graph", "od-graph-noprov"] + [p for p, m in OPTIONAL.items() if _have(m)]
    return _run_quick(tmp_path_factory.mktemp("perf"), ",".join(peers))


def test_quick_path_runs_the_od_peers(quick):
    report, table = quick
    providers = [n for n, s in report["providers"].items() if s["status"] == "loaded" and "numpy" in s["targets"]]
    expected = ["od-eager", "od-graph"] + (["od-graph-noprov"] if providers else [])
    _check_report(report, table, expected + [p for p in OPTIONAL if p in report["peers"]])
    if not providers:
        assert "no kernel provider" in report["missing"]["od-graph-noprov"]
    assert "od graph" in table


@pytest.mark.parametrize("peer", list(OPTIONAL))
def test_quick_path_pairs_od_with_a_peer(quick, peer):
    if not _have(OPTIONAL[peer]):
        pytest.skip(f"{OPTIONAL[peer]} is not installed (pip install -e '.[bench]')")
    report, table = quick
    assert peer in report["peers"], report["missing"]
    rows = {r["row"]: r for r in report["rows"]}
    for row in rows.values():
        if peer in row["peers"]:
            assert row["ratios"][f"od-graph/{peer}"]["n"] == len(row["peers"][peer]["ms"])
            if row["best_peer"] == peer:
                assert row["vs_best"]["od-graph"] == row["ratios"][f"od-graph/{peer}"]
    assert "od graph / best" in table and f"od graph / {perf.PEER_TITLES[peer]}" in table
    assert peer in rows["conv_a"]["peers"]
    if peer == "onnxruntime":  # no training ops in ONNX Runtime: reported, not fatal
        assert "not an inference op" in rows["bn_train"]["skipped"]["onnxruntime"]


def test_od_alone_prints_no_ratio_table(tmp_path):
    report, table = _run_quick(tmp_path, "od-graph", rows="matmul")
    assert report["peers"] == ["od-graph"] and "Paired ratios" not in table


def test_unknown_rows_and_peers_are_refused():
    for args, word in ((["--rows", "conv_z"], "conv_z"), (["--peers", "jax"], "jax")):
        proc = subprocess.run([sys.executable, str(BENCH / "perf.py"), "--tiny", *args], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode != 0 and word in proc.stderr and "allowed" in proc.stderr


def test_a_provider_adds_the_peer_with_providers_disabled(tmp_path):
    """With a kernel provider installed (the test suite's fastconv), od-graph-noprov runs with it
    disabled, od-graph with it, and the table shows the provider's gain."""
    from pip_plugins import install

    target = tmp_path / "site"
    install(["opdispatch-fastconv"], target, tmp_path / "build")
    path = os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])
    report, table = _run_quick(tmp_path, "od-graph,od-graph-noprov", rows="conv_a", env={"PYTHONPATH": path})
    _check_report(report, table, ["od-graph", "od-graph-noprov"])
    assert report["info"]["od-graph"]["providers"]["fastconv"]["enabled"] is True
    assert report["info"]["od-graph-noprov"]["providers"]["fastconv"]["enabled"] is False
    assert report["rows"][0]["provider_gain"]["n"] >= 3
    assert "provider gain" in table


@pytest.mark.slow
def test_model_rows_run_the_same_exported_model(tmp_path):
    if not (_have("torch") and _have("torchvision") and _have("onnxruntime")):
        pytest.skip("the model rows need torch, torchvision and onnxruntime (pip install -e '.[torch]')")
    report, table = _run_quick(tmp_path, "od-graph,onnxruntime", rows="resnet18_b1,mobilenet_v2_b1")
    _check_report(report, table, ["od-graph", "onnxruntime"])
    for row in report["rows"]:
        assert row["flops"] > 0 and row["best_peer"] == "onnxruntime"


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux's /proc schedstat")
def test_settling_waits_while_the_previous_worker_spins_and_not_after():
    spinner = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                                "sys.stdout.write('up\\n'); sys.stdout.flush()\n"
                                "t = time.perf_counter()\nwhile time.perf_counter() - t < 0.4: pass\n"
                                "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert spinner.stdout.readline() == "up\n"
        busy = perf.wait_idle(spinner.pid, max_ms=5000)
        assert 150 < busy < 5000  # it spun for 0.4 s (less whatever elapsed before the wait began)
        idle = perf.wait_idle(spinner.pid, max_ms=5000)
        assert idle < 100  # asleep: two quiet polls end the wait
    finally:
        spinner.kill()
        spinner.wait()
    assert perf.wait_idle(spinner.pid, max_ms=100) is None  # gone: nothing to read


def test_interleave_check_compares_schedules(tmp_path):
    out = tmp_path / "inter.json"
    proc = subprocess.run([sys.executable, str(BENCH / "interleave_check.py"), "--tiny", "--rows", "matmul",
                           "--peers", "od-eager,od-graph", "--variants", "alone,lockstep:settle,inprocess",
                           "--cycles", "2", "--rounds", "2", "--json", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    (entry, *_) = json.loads(out.read_text())
    assert entry["row"] == "matmul" and set(entry["ms"]) == {"alone", "lockstep:settle", "inprocess"}
    assert all(len(ms) == 4 for ms in entry["ms"].values())  # 2 cycles x 2 rounds per variant
    assert "lockstep:settle" in proc.stdout
