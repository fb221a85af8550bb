"""opdispatch.distributed: data-parallel training of the examples' CNN on a local three-node Ray cluster
(127.0.0.1), and od tensors as Ray objects. Without Ray (pip install 'opdispatch[ray]') or
scikit-learn the cluster tests skip with the reason; the sharding and averaging tests always run."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import opdispatch as od
from opdispatch.distributed import DistributedError, average, epoch_batches, shard

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def test_shards_cover_the_batch_in_order_with_sizes_one_apart():
    batch = np.arange(11)
    parts = [shard(batch, r, 3) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 3]
    assert np.array_equal(np.concatenate(parts), batch)
    assert [len(shard(np.arange(2), r, 3)) for r in range(3)] == [1, 1, 0]
    with pytest.raises(od.InvalidArgumentError, match="'rank' got 3"):
        shard(batch, 3, 3)


def test_average_weights_each_replica_by_its_examples():
    a, b = np.array([2.0, 4.0], np.float32), np.array([1.0, 1.0], np.float32)  # gradient sums over 2 and 1
    mean = average([(2, {"w": a}), (1, {"w": b})])
    assert mean["w"].dtype == np.float32 and np.allclose(mean["w"], [1.0, 5.0 / 3])


def test_epoch_batches_are_the_single_process_order():
    got = epoch_batches(np.random.default_rng(3), 10, 4)
    order = np.random.default_rng(3).permutation(10)
    assert [list(b) for b in got] == [list(order[:4]), list(order[4:8]), list(order[8:])]


def test_without_a_ray_connection_the_error_says_what_to_do():
    from opdispatch.distributed import DataParallel

    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        pytest.skip("a Ray connection is open in this process")
    with pytest.raises(DistributedError, match="Ray is not (installed|connected)"):
        DataParallel(lambda s, d: ({}, {}), lambda *a: None, ["numpy:0"], x=np.zeros((1, 1)), y=np.zeros(1),
                     batch_size=1, optimizer=od.SGD)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'opdispatch[ray]'): distributed tests skip")
    pytest.importorskip("sklearn", reason="the digits dataset ships in scikit-learn (pip install -e '.[test]')")
    from opdispatch_conformance.fleet import LocalCluster
    from pip_plugins import install

    root = tmp_path_factory.mktemp("dp")
    install(["opdispatch-fake"], root / "fake", root)
    nodes = [{"num_cpus": 1}, {"num_cpus": 1, "env_vars": {"PYTHONPATH": str(root / "fake")}}, {"num_cpus": 1}]
    with LocalCluster(nodes) as c:
        yield c


@pytest.fixture(scope="module")
def example(cluster):
    import ray

    sys.path.insert(0, EXAMPLES)
    import cnn
    import train_cnn
    import train_cnn_ray

    for mod in (cnn, train_cnn_ray):
        ray.cloudpickle.register_pickle_by_value(mod)
    x_tr, y_tr, _, _ = train_cnn.load_digits_split(0)
    return cnn, train_cnn_ray, x_tr[:59], y_tr[:59]


def _one_process(cnn, x, y, global_batch, steps, seed=0, batch_norm=False):
    """What one process with batch ``global_batch`` computes (train_cnn.py's loop)."""
    params, state = cnn.init_params(od.random.Generator(seed), image_hw=(8, 8), batch_norm=batch_norm)
    opt = od.SGD(params, lr=0.05, momentum=0.9)
    rng = np.random.default_rng(seed)
    done = 0
    while done < steps:
        for batch in epoch_batches(rng, len(x), global_batch):
            if done == steps:
                break
            _, state = cnn.train_step(opt, state, od.tensor(x[batch], dtype="float32"), y[batch])
            done += 1
    return {n: p.numpy() for n, p in opt.params.items()}


@pytest.mark.parametrize("devices", [["numpy:0", "numpy:0"], ["numpy:0", "numpy:0", "numpy:0"],
                                     ["numpy:0", "opencl:0", "numpy:0"]], ids=["2x numpy", "3x numpy", "mixed"])
@pytest.mark.ray
def test_n_workers_with_batch_b_equal_one_process_with_batch_n_times_b(example, devices):
    from opdispatch.distributed import DataParallel

    if "opencl:0" in devices and od.Device("opencl:0") not in od.devices():
        pytest.skip("opencl:0 is not available here (see `opdispatch devices`)")
    cnn, ex, x, y = example
    b, steps = 8, 5  # 59 examples: the last global batch is 11 (shards 6, 5 or 4, 4, 3: weighted)
    dp = DataParallel(ex.init_digits_cnn, cnn.loss_fn, devices, x=x, y=y, batch_size=b,
                      optimizer=functools.partial(od.SGD, lr=0.05, momentum=0.9), seed=0)
    try:
        rng = np.random.default_rng(0)
        done = 0
        while done < steps:
            for batch in epoch_batches(rng, len(x), len(devices) * b):
                if done < steps:
                    dp.step(batch)
                    done += 1
        replicas = dp.all_params()
    finally:
        dp.shutdown()
    ref = _one_process(cnn, x, y, len(devices) * b, steps)
    for name, want in ref.items():
        for rank, got in enumerate(replicas):
            np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5, err_msg=f"{name} on rank {rank}")
    if len(set(devices)) == 1:  # one backend: every replica applied the same float32 update
        assert all(np.array_equal(r[name], replicas[0][name]) for r in replicas for name in ref)


@pytest.mark.ray
def test_fit_checkpoints_resume_and_keep_batch_norm_statistics_per_worker(example, tmp_path):
    from opdispatch.distributed import DataParallel

    cnn, ex, x, y = example
    init = functools.partial(ex.init_digits_cnn, batch_norm=True)
    opt = functools.partial(od.SGD, lr=0.05, momentum=0.9)
    dp = DataParallel(init, cnn.loss_fn, ["numpy:0", "numpy:0"], x=x, y=y, batch_size=10, optimizer=opt, seed=1)
    seen = []
    try:
        (loss,) = dp.fit(1, on_step=lambda epoch, step, steps, _loss: seen.append((epoch, step, steps)))
        assert seen == [(0, 1, 3), (0, 2, 3), (0, 3, 3)] and np.isfinite(loss)
        ckpt = str(tmp_path / "dp.npz")
        dp.save_checkpoint(ckpt, {"note": "dp"})
        params = dp.params()
    finally:
        dp.shutdown()
    saved = od.load_checkpoint(ckpt)
    assert saved.metadata["epoch"] == 1 and saved.metadata["devices"] == ["numpy:0", "numpy:0"]
    assert type(saved.optimizer) is od.SGD and saved.optimizer.steps == 3
    assert all(np.array_equal(saved.params[n].numpy(), params[n]) for n in params)
    assert set(saved.state) == {"conv1.mean", "conv1.var", "conv2.mean", "conv2.var"}
    # per-worker batch statistics: not the one-process run with batch 20 (documented)
    ref = _one_process(cnn, x, y, 20, 3, seed=1, batch_norm=True)
    assert not all(np.allclose(params[n], ref[n], rtol=1e-4, atol=1e-5) for n in ref)
    dp2 = DataParallel(init, cnn.loss_fn, ["numpy:0", "numpy:0", "numpy:0"], x=x, y=y, batch_size=10, optimizer=opt,
                       seed=1)
    try:
        assert dp2.load_checkpoint(ckpt)["epoch"] == 1 and dp2.epoch == 1
        assert all(np.array_equal(dp2.params(2)[n], params[n]) for n in params)
        dp2.fit(1)
        assert dp2.epoch == 2
    finally:
        dp2.shutdown()


@pytest.mark.ray
def test_tensors_cross_processes_as_ray_objects_on_their_device(cluster):
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    fake_node = cluster.nodes[1].node_id
    on_fake = NodeAffinitySchedulingStrategy(fake_node, soft=False)

    @ray.remote(num_cpus=0)
    def describe(t):
        return str(t.device), t.numpy().tolist()

    @ray.remote(num_cpus=0)
    def make_fake():
        return od.tensor([1.0, 2.0], device="fake:0")

    for dev in [d for d in ("numpy:0", "opencl:0") if od.Device(d) in od.devices()]:
        t = od.tensor([[1.0, -2.0]], device=dev)
        assert ray.get(describe.remote(t)) == (dev, [[1.0, -2.0]])  # passed as an argument
        back = ray.get(ray.put(t))
        assert back.device == t.device and back.numpy().tolist() == [[1.0, -2.0]]
    ref = make_fake.options(scheduling_strategy=on_fake).remote()
    assert ray.get(describe.options(scheduling_strategy=on_fake).remote(ref)) == ("fake:0", [1.0, 2.0])
    with pytest.raises(Exception, match="saved on fake:0: that device is not available here"):
        ray.get(ref)  # the driver has no fake:0: a clear error, no silent move


@pytest.mark.ray
def test_the_example_trains_and_times_steps(cluster, capsys):
    sys.path.insert(0, EXAMPLES)
    import train_cnn_ray

    per_step = train_cnn_ray.main(["--devices", "numpy:0,numpy:0", "--time-steps", "2", "--batch-size", "8"])
    assert per_step > 0 and "ms per step" in capsys.readouterr().out


def test_the_core_does_not_import_ray():
    code = "import sys, opdispatch, opdispatch.distributed; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def _wait_for_cpus(ray, count: float, within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU", 0) >= count:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.ray
def test_a_replica_stuck_in_a_step_times_out_naming_it_and_frees_its_node(example):
    import ray

    from opdispatch.distributed import DataParallel, ReplicaTimeoutError

    cnn, ex, x, y = example
    b = 4
    batches = epoch_batches(np.random.default_rng(0), len(x), 2 * b)
    x = x.copy()
    x[shard(batches[1], 1, 2)[0]] = np.nan  # an example only replica 1 sees, in the second step

    def loss_hanging_on_nan(params, state, xb, yb):
        if np.isnan(xb.numpy()).any():
            time.sleep(120)  # a hung kernel; the timeout kills the actor long before
        return cnn.loss_fn(params, state, xb, yb)

    dp = DataParallel(ex.init_digits_cnn, loss_hanging_on_nan, ["numpy:0", "numpy:0"], x=x, y=y, batch_size=b,
                      optimizer=functools.partial(od.SGD, lr=0.05), seed=0, step_timeout_s=5)
    try:
        assert np.isfinite(dp.step(batches[0]))
        start = time.monotonic()
        with pytest.raises(ReplicaTimeoutError) as err:
            dp.step(batches[1])
        assert 4.5 < time.monotonic() - start < 30
    finally:
        dp.shutdown()
    message = str(err.value)
    assert "replica 1 (numpy:0) did not finish computing its gradients within 5 s" in message
    assert "replica 0" not in message and "resume from the last checkpoint" in message
    assert dp.replicas == []  # shut down: the hung actor was killed, its node's CPU is free again
    assert _wait_for_cpus(ray, 3)


@pytest.mark.ray
def test_a_replica_lost_mid_training_fails_the_step_naming_it(example):
    import ray

    from opdispatch.distributed import DataParallel

    cnn, ex, x, y = example
    dp = DataParallel(ex.init_digits_cnn, cnn.loss_fn, ["numpy:0", "numpy:0"], x=x, y=y, batch_size=4,
                      optimizer=od.SGD, seed=0)
    try:
        batches = epoch_batches(np.random.default_rng(0), len(x), 8)
        dp.step(batches[0])
        ray.kill(dp.replicas[1])
        with pytest.raises(DistributedError, match=r"replica 1 \(numpy:0\) failed computing its gradients or its "
                                                    r"node was lost"):
            dp.step(batches[1])
    finally:
        dp.shutdown()
    assert _wait_for_cpus(ray, 3)


def test_the_step_timeout_must_be_positive():
    from opdispatch.distributed import DataParallel

    with pytest.raises(od.InvalidArgumentError, match="argument 'step_timeout_s' got 0; allowed: seconds > 0"):
        DataParallel(lambda s, d: ({}, {}), lambda *a: None, ["numpy:0"], x=np.zeros((1, 1)), y=np.zeros(1),
                     batch_size=1, optimizer=od.SGD, step_timeout_s=0)


@pytest.mark.ray
def test_replicas_the_cluster_cannot_place_fail_with_the_reason(example):
    from opdispatch.distributed import DataParallel

    cnn, ex, x, y = example  # three nodes, each declaring one numpy:0: a fourth replica has no device
    with pytest.raises(DistributedError, match="did not start within 3 s: the cluster lacks the resources"):
        DataParallel(ex.init_digits_cnn, cnn.loss_fn, ["numpy:0"] * 4, x=x, y=y, batch_size=4, optimizer=od.SGD,
                     ready_timeout_s=3)
