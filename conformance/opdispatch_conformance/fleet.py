"""Fleet conformance: the suite on every opdispatch device of every node of a Ray cluster, one report.

``opdispatch conformance --ray [ADDRESS] (--all | --device D ...)`` connects to a Ray cluster (a new
local one without an address), then

1. runs a probe task on every alive node (pinned there with a hard node affinity): it reports the
   opdispatch devices that node's own installed plugins give, with the backend versions, device
   names, dtypes and driver facts (`suite.device_facts`), Python, NumPy, the platform and the
   backends that did not load there, with the reasons (the column facts of the report);
2. runs the suite as one Ray task per (node, device), pinned to its node; where the node declares
   the device's custom resource (`device_resource`: ``opdispatch:<device>``, 1 unit) the task needs
   it, so two runs never share one device, even from two drivers at once (`node_resources` is what
   a node should declare: ``ray start ... --resources "$(python -m opdispatch_conformance.fleet
   --resources)"``); where it does not, this run still starts one task per device, but a concurrent
   run could share it, which a note says;
3. prints a line as each column finishes and merges the columns into one run set for `report`
   (the ops x host:device matrix, JSON and Markdown, each column with its node facts). A column whose
   node died or whose task failed is marked lost with the reason; the others are kept. A task still
   running ``timeout_s`` after it started (a hung kernel; `DEFAULT_TASK_TIMEOUT_S`, ``--task-timeout``)
   is cancelled (``ray.cancel(force=True)``: its worker process is killed) and its column marked lost
   ("timed out after N s"); time spent waiting for the node's CPU or device does not count.

Each task runs exactly what ``opdispatch conformance --device D`` runs locally (`suite.collect_cases`
and `suite.run_device` with the same arguments), so a column's results are those of a local run.

Ray is an optional dependency (``pip install opdispatch-conformance[ray]`` or ``opdispatch[ray]``):
this module imports it only inside its functions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, TextIO

import numpy as np

import opdispatch as od
from opdispatch import Device, OpDispatchError

from .cases import case_from_json
from .runner import FAILED, PASSED, UNSUPPORTED
from .suite import collect_cases, device_facts, run_device

RESOURCE_PREFIX = "opdispatch:"
DEFAULT_TASK_TIMEOUT_S = 3600.0
"""How long a column's task may run, once started, before it is cancelled and its column marked lost: an
hour, generous for the whole suite on a slow device (a local numpy:0 run takes about a minute)."""
RAY_MISSING = "Ray is not installed: pip install 'opdispatch[ray]' (or 'ray[default]')"


class FleetError(OpDispatchError):
    """A fleet run that cannot start: Ray missing, no cluster at the address, no node or device to run on."""


def device_resource(device: "str | Device") -> str:
    """The custom Ray resource a node declares (1 unit) for one of its opdispatch devices."""
    return f"{RESOURCE_PREFIX}{device}"


def node_resources() -> dict[str, float]:
    """The custom resources this machine's node should declare: one unit per opdispatch device here."""
    return {device_resource(d): 1.0 for d in od.devices()}


@dataclass(frozen=True)
class Column:
    """One (node, device) of the fleet, with the facts the report records about it."""

    node_id: str
    host: str
    ip: str
    device: str
    backend: str
    backend_version: str
    device_name: str
    dtypes: tuple[str, ...]
    python: str
    numpy: str
    platform: str
    conformance: str
    resource: Optional[str] = None  # the node's custom resource for the device, when it declares one
    label: str = ""  # host:device, made unique (see `label_columns`)
    driver: tuple[tuple[str, str], ...] = ()  # the device's driver facts (`DeviceInfo.driver`), in order
    backends_not_loaded: tuple[tuple[str, str], ...] = ()  # on this node: backend name, why

    def facts(self) -> dict[str, Any]:
        """The node facts of the report's column (its device's are in the run record's "device")."""
        return {"node_id": self.node_id, "host": self.host, "ip": self.ip, "device": self.device,
                "device_name": self.device_name, "dtypes": list(self.dtypes), "python": self.python,
                "numpy": self.numpy, "platform": self.platform, "opdispatch_conformance": self.conformance,
                "resource": self.resource, "backends_not_loaded": dict(self.backends_not_loaded)}

    def device_facts(self) -> dict[str, Any]:
        """The device's facts as the probe found them (`suite.device_facts`; a lost column's record)."""
        return {"name": self.device_name, "dtypes": list(self.dtypes), "driver": dict(self.driver)}


def probe_here() -> dict[str, Any]:
    """What this process sees: its node's facts and each opdispatch device with its backend's facts
    (the body of the probe task; also usable locally)."""
    from . import __version__

    backends = od.backends()
    devices = []
    for dev in od.devices():
        facts = device_facts(dev)
        st = backends[dev.backend]
        devices.append({"device": str(dev), "backend": st.name, "backend_version": st.version,
                        "device_name": facts["name"], "dtypes": facts["dtypes"], "driver": facts["driver"]})
    skipped = {name: f"{st.status}: {st.reason}" for name, st in backends.items() if st.status != "loaded"}
    return {"host": socket.gethostname(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "conformance": __version__, "devices": devices,
            "backends_not_loaded": skipped}


def run_here(device: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The suite on ``device`` in this process with the command's arguments ``spec`` (the body of a
    column's task): the run record of `suite.run_device`, as a local run gives it."""
    od.device_info(device)  # an unknown or unavailable device fails here, with the reason
    if spec.get("case"):
        cases = [case_from_json(spec["case"])]
    else:
        cases = collect_cases(spec.get("ops"), random_per_op=spec.get("random", 10), seed=spec.get("seed", 0),
                              onnx=spec.get("onnx", True))
        if spec.get("only"):
            cases = [c for c in cases if c.name in set(spec["only"])]
    return run_device(Device(device), cases, spec.get("dtypes"), spec.get("mode", "eager"), out=None,
                      gradients=spec.get("gradients", "yes"))


STARTED = "started"
"""What a column's task yields first, as it starts running (its timeout counts from then)."""


def column_task(device: str, spec: dict[str, Any]) -> Iterator[Any]:
    """The body of a column's Ray task (a streaming generator): `STARTED` as soon as it runs, then the
    run record of `run_here`."""
    yield STARTED
    yield run_here(device, spec)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise FleetError(f"conformance --ray: {RAY_MISSING}") from None
    return ray


@dataclass
class Connection:
    """A connection to a Ray cluster; `close` disconnects only what `connect` opened."""

    ray: Any
    opened: bool

    def close(self) -> None:
        if self.opened:
            self.ray.shutdown()


def connect(address: Optional[str]) -> Connection:
    """Connect to the Ray cluster at ``address`` (``"auto"``: the one ``ray start`` left here; None or
    ``"local"``: start a local one-node cluster), or reuse this process's connection."""
    ray = _ray()
    if ray.is_initialized():
        return Connection(ray, opened=False)
    try:
        if address in (None, "local"):
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise FleetError(f"conformance --ray: argument 'address' got {address!r}: cannot connect to a Ray "
                         f"cluster there ({exc}); allowed: host:port of a running head node, 'auto' or none "
                         f"(a local cluster)") from None
    return Connection(ray, opened=True)


def _pinned(ray: Any, node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def probe_nodes(ray: Any, timeout_s: float = 120.0, out: Optional[TextIO] = sys.stderr) -> tuple[list[Column],
                                                                                                  dict[str, str]]:
    """Every (node, device) of the alive nodes, from a probe task on each node, as labelled columns;
    and the nodes whose probe failed, by node id, with the reason."""
    probe = ray.remote(num_cpus=0, max_retries=0)(probe_here)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {n["NodeID"]: probe.options(scheduling_strategy=_pinned(ray, n["NodeID"])).remote() for n in nodes}
    columns, failed = [], {}
    for node in nodes:
        nid = node["NodeID"]
        try:
            facts = ray.get(refs[nid], timeout=timeout_s)
        except Exception as exc:  # a node lost during the probe: the others go on
            failed[nid] = _reason(exc)
            continue
        declared = node.get("Resources", {})
        if out is not None:
            print(f"fleet: node {facts['host']} ({node.get('NodeManagerAddress', '?')}, {nid[:8]}): "
                  f"{', '.join(d['device'] for d in facts['devices']) or 'no device'}", file=out, flush=True)
        for d in facts["devices"]:
            res = device_resource(d["device"])
            columns.append(Column(
                node_id=nid, host=facts["host"], ip=node.get("NodeManagerAddress", ""), device=d["device"],
                backend=d["backend"], backend_version=d["backend_version"], device_name=d["device_name"],
                dtypes=tuple(d["dtypes"]), python=facts["python"], numpy=facts["numpy"],
                platform=facts["platform"], conformance=facts["conformance"],
                resource=res if declared.get(res, 0) >= 1 else None, driver=tuple(d["driver"].items()),
                backends_not_loaded=tuple(sorted(facts["backends_not_loaded"].items()))))
    return label_columns(columns), failed


def label_columns(columns: Sequence[Column]) -> list[Column]:
    """Columns labelled ``host:device``; where several nodes share a host name (several Ray nodes on
    one machine), ``host/<node id prefix>:device``."""
    hosts: dict[str, set[str]] = {}
    for c in columns:
        hosts.setdefault(c.host, set()).add(c.node_id)
    out = []
    for c in columns:
        node = c.host if len(hosts[c.host]) == 1 else f"{c.host}/{c.node_id[:6]}"
        out.append(dataclasses.replace(c, label=f"{node}:{c.device}"))
    return sorted(out, key=lambda c: c.label)


def _reason(exc: BaseException) -> str:
    """A one-line reason for a lost column: the exception's class and its first line."""
    text = str(exc).strip().splitlines()
    cause = getattr(exc, "cause", None)  # a RayTaskError wraps the task's own exception
    if cause is not None:
        text = [f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"]
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:500]


def lost_run(column: Column, mode: str, reason: str) -> dict[str, Any]:
    """The run record of a lost column (no results; `report` marks it lost)."""
    return {"backend": column.backend, "version": column.backend_version, "mode": mode, "dtypes": [],
            "results": [], "device": column.device_facts(), "node": column.facts(), "lost": reason}


def run_fleet(ray: Any, columns: Sequence[Column], spec: dict[str, Any], *, num_cpus: float = 1.0,
              timeout_s: Optional[float] = DEFAULT_TASK_TIMEOUT_S, out: Optional[TextIO] = sys.stderr,
              progress: Optional[Callable[[str, dict], None]] = None) -> dict[str, dict[str, Any]]:
    """One pinned Ray task per column running `run_here` with ``spec``; the run records by column label
    (lost ones included), a progress line on ``out`` as each finishes. A task still running ``timeout_s``
    seconds after it started is cancelled (force: its worker is killed) and its column marked lost;
    ``timeout_s=None`` waits for ever."""
    _check_timeout(timeout_s)
    task = ray.remote(max_retries=0, num_returns="streaming")(column_task)
    pending: dict[Any, Column] = {}  # ObjectRefGenerator -> its column
    for col in columns:
        opts: dict[str, Any] = {"num_cpus": num_cpus, "scheduling_strategy": _pinned(ray, col.node_id)}
        if col.resource:
            opts["resources"] = {col.resource: 1}
        pending[task.options(**opts).remote(col.device, spec)] = col
    started: dict[Any, float] = {}  # the tasks running, by when their start was seen
    mode = spec.get("mode", "eager")
    runs: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()

    def finish(col: Column, run: dict[str, Any], line: str) -> None:
        runs[col.label] = run
        if out is not None:
            print(f"fleet: [{len(runs)}/{len(columns)}] {col.label}: {line} "
                  f"({time.perf_counter() - start:.1f} s)", file=out, flush=True)
        if progress is not None:
            progress(col.label, run)

    while pending:
        wait_s = None
        if timeout_s is not None and started:
            wait_s = max(0.0, min(started.values()) + timeout_s - time.monotonic())
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=wait_s)
        if not ready:  # a running task reached its deadline
            now = time.monotonic()
            for gen in [g for g, t0 in started.items() if timeout_s is not None and now - t0 >= timeout_s]:
                col = pending.pop(gen)
                del started[gen]
                ray.cancel(gen, force=True)
                run = lost_run(col, mode, f"timed out after {timeout_s:g} s (the task was cancelled)")
                finish(col, run, f"LOST ({run['lost']})")
            continue
        gen = ready[0]
        col = pending[gen]
        try:
            value = ray.get(next(gen))
        except Exception as exc:  # the task failed or its node died: this column is lost, the rest go on
            del pending[gen]
            started.pop(gen, None)
            run = lost_run(col, mode, _reason(exc))
            finish(col, run, f"LOST ({run['lost']})")
            continue
        if gen not in started:  # its first item: the task runs now, and its timeout counts from here
            started[gen] = time.monotonic()
            continue
        del pending[gen], started[gen]
        run = value
        run["node"] = col.facts()
        counts = {s: sum(r.status == s for r in run["results"]) for s in (PASSED, FAILED, UNSUPPORTED)}
        finish(col, run, f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[UNSUPPORTED]} unsupported")
    return runs


def _check_timeout(timeout_s: Optional[float]) -> None:
    if timeout_s is not None and not timeout_s > 0:  # NaN too
        raise FleetError(f"conformance --ray: argument 'task_timeout' got {timeout_s!r}; allowed: seconds > 0")


def select(columns: Sequence[Column], devices: Optional[Sequence[str]]) -> list[Column]:
    """The columns of the devices named (every column when None); a named device no node has fails."""
    if not devices:
        return list(columns)
    wanted = [str(Device(d)) for d in devices]
    missing = [d for d in wanted if not any(c.device == d for c in columns)]
    if missing:
        raise FleetError(f"conformance --ray: argument 'device' got {missing}: no node of the cluster has it; "
                         f"allowed: {sorted({c.device for c in columns})}")
    return [c for c in columns if c.device in wanted]


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The suite's arguments of the conformance command, as a picklable dict for the column tasks."""
    return {"ops": args.ops.split(",") if args.ops else None, "dtypes": args.dtypes.split(",") if args.dtypes
            else None, "mode": args.mode or "eager", "gradients": args.gradients, "random": args.random,
            "seed": args.seed, "onnx": not args.no_onnx, "case": args.case, "only": args.only}


def run_command(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``opdispatch conformance --ray [ADDRESS]``: connect, probe, run, and return the merged runs."""
    if args.models is not None:
        raise FleetError("conformance --ray: argument 'models' is not supported with --ray; allowed: the op "
                         "suite (--all or --device D)")
    if args.mode == "both":
        raise FleetError("conformance --ray: argument 'mode' got 'both'; allowed: eager or graph (run twice)")
    _check_timeout(args.task_timeout)
    conn = connect(args.ray)
    try:
        columns, failed = probe_nodes(conn.ray, out=sys.stderr)
        for nid, reason in failed.items():
            print(f"fleet: node {nid[:8]} lost during the probe: {reason}", file=sys.stderr)
        columns = select(columns, None if args.all else (args.device or ["numpy:0"]))
        if not columns:
            raise FleetError("conformance --ray: no node of the cluster has an opdispatch device")
        undeclared = sorted({c.label for c in columns if c.resource is None})
        if undeclared:
            print(f"note: {len(undeclared)} column(s) have no declared device resource, so a concurrent run "
                  f"could share their device; declare them when starting each node: ray start ... --resources "
                  f"\"$(python -m opdispatch_conformance.fleet --resources)\"", file=sys.stderr)
        nodes = len({c.node_id for c in columns})
        print(f"conformance: {len(columns)} device(s) on {nodes} node(s): {', '.join(c.label for c in columns)}",
              file=sys.stderr, flush=True)
        return run_fleet(conn.ray, columns, spec_from_args(args), timeout_s=args.task_timeout, out=sys.stderr)
    finally:
        conn.close()


# -- a local multi-node cluster (tests, scripts/fleet.sh) ----------------------------------------------

LOOPBACK = "127.0.0.1"


def loopback_only() -> None:
    """Make this process's Ray resolve a ``127.0.0.1`` address to the loopback, not to the machine's
    default-route address (Ray's default on Linux, which a node bound to 127.0.0.1 does not answer
    on, so ``ray.init`` would wait for ever). Ray reads the switch (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``,
    which also governs this) when first imported; where it already is, its constant is set too."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]


class LocalCluster:
    """Several Ray nodes on this machine (`ray.cluster_utils.Cluster`), every one bound to 127.0.0.1.

    ``nodes`` gives each node's keyword arguments (``num_cpus``, ``env_vars`` for its raylet and so its
    workers, e.g. a PYTHONPATH with plugins only that node has); each node declares `node_resources`
    for the devices this machine has plus ``extra_resources`` of its entry. Use as a context manager:
    the driver is connected inside and everything is shut down on exit.
    """

    def __init__(self, nodes: Sequence[dict[str, Any]]) -> None:
        self.node_args = [dict(n) for n in nodes]
        self.cluster: Any = None
        self.nodes: list[Any] = []

    def __enter__(self) -> "LocalCluster":
        loopback_only()
        ray = _ray()
        from ray.cluster_utils import Cluster

        self.cluster = Cluster()
        try:
            for args in self.node_args:
                args = dict(args)
                resources = {**args.pop("resources", {}), **args.pop("extra_resources", {})}
                if args.pop("device_resources", True):
                    resources = {**_resources_seen_with(args.get("env_vars") or {}), **resources}
                self.nodes.append(self.cluster.add_node(node_ip_address=LOOPBACK, include_dashboard=False,
                                                        resources=resources, **args))
            ray.init(address=self.cluster.address, log_to_driver=False)
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def remove(self, index: int) -> None:
        """Kill node ``index`` (its workers die with it)."""
        self.cluster.remove_node(self.nodes[index], allow_graceful=False)

    def __exit__(self, *exc: Any) -> None:
        ray = _ray()
        if ray.is_initialized():
            ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()


def _resources_seen_with(env_vars: dict[str, str]) -> dict[str, float]:
    """`node_resources` as a process with ``env_vars`` on top of this one's environment sees them (a
    node's plugins may differ: a PYTHONPATH of its own)."""
    import subprocess

    env = {**os.environ, **env_vars}
    proc = subprocess.run([sys.executable, "-m", "opdispatch_conformance.fleet", "--resources"], env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise FleetError(f"fleet: the device resources of a node could not be listed: {proc.stderr.strip()}")
    return {str(k): float(v) for k, v in json.loads(proc.stdout).items()}


@dataclass(frozen=True)
class LocalNodes:
    """The local demonstration cluster of ``scripts/fleet.sh``: ``count`` nodes of one CPU each; node
    ``i`` also sees the plugins installed under ``extra_paths[i]`` (a PYTHONPATH of its own)."""

    count: int = 2
    extra_paths: tuple[str, ...] = ()

    def node_args(self) -> list[dict[str, Any]]:
        args: list[dict[str, Any]] = []
        for i in range(self.count):
            path = self.extra_paths[i] if i < len(self.extra_paths) else ""
            env = {"PYTHONPATH": os.pathsep.join(p for p in (path, os.environ.get("PYTHONPATH", "")) if p)}
            args.append({"num_cpus": 1, "env_vars": env if path else {}})
        return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m opdispatch_conformance.fleet``: ``--resources`` prints this machine's device resources
    as JSON (for ``ray start --resources``); ``--local-nodes N [--node-path I=DIR ...] -- ARGS`` runs
    ``opdispatch conformance --ray ADDRESS ARGS`` on a local N-node cluster and shuts it down."""
    p = argparse.ArgumentParser(prog="python -m opdispatch_conformance.fleet", description=main.__doc__)
    p.add_argument("--resources", action="store_true", help="print this machine's device resources as JSON")
    p.add_argument("--local-nodes", type=int, metavar="N", help="start a local cluster of N nodes on 127.0.0.1")
    p.add_argument("--node-path", action="append", default=[], metavar="I=DIR",
                   help="node I (0-based) also imports plugins from DIR (repeatable)")
    p.add_argument("conformance_args", nargs=argparse.REMAINDER, help="arguments of opdispatch conformance")
    args = p.parse_args(argv)
    if args.resources:
        print(json.dumps(node_resources(), sort_keys=True))
        return 0
    if not args.local_nodes or args.local_nodes < 1:
        p.error("give --resources or --local-nodes N (N >= 1)")
    paths = [""] * args.local_nodes
    for item in args.node_path:
        index, _, path = item.partition("=")
        if not index.isdigit() or int(index) >= args.local_nodes or not path:
            p.error(f"--node-path got {item!r}; allowed: I=DIR with 0 <= I < {args.local_nodes}")
        paths[int(index)] = os.path.abspath(path)
    from .cli import main as conformance_main

    rest = [a for a in args.conformance_args if a != "--"]
    with LocalCluster(LocalNodes(args.local_nodes, tuple(paths)).node_args()) as cluster:
        print(f"fleet: local cluster of {args.local_nodes} node(s) at {cluster.address}", file=sys.stderr)
        return conformance_main(["--ray", cluster.address, *rest])


if __name__ == "__main__":
    sys.exit(main())
