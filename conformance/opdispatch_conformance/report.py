"""Conformance reports: per op x dtype summaries, a terminal table, JSON and Markdown.

The JSON report is versioned and diffs cleanly between two runs: devices, ops, dtypes and cases
appear in a stable order, and nothing in it depends on the time of the run.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from .runner import FAILED, PASSED, UNSUPPORTED, CaseResult

FORMAT = "opdispatch-conformance"
VERSION = 1


@dataclass(frozen=True)
class Summary:
    """One op in one dtype on one device."""

    op: str
    dtype: str
    provider: str  # whose kernels ran ("decomposed": the op's decomposition; "-": none could)
    passed: int
    failed: int
    unsupported: int
    max_abs: float
    max_rel: float
    worst_ratio: float
    rtol: Optional[float]
    atol: Optional[float]
    unsupported_reasons: tuple[str, ...]

    @property
    def verdict(self) -> str:
        if self.failed:
            return "FAIL"
        if self.passed:
            return "ok" if not self.unsupported else "partial"
        return "unsupported"

    def to_dict(self) -> dict:
        return {"op": self.op, "dtype": self.dtype, "provider": self.provider, "verdict": self.verdict,
                "passed": self.passed, "failed": self.failed, "unsupported": self.unsupported,
                "max_abs_error": self.max_abs, "max_rel_error": self.max_rel,
                "worst_error_over_tolerance": self.worst_ratio,
                "rtol_at_worst": self.rtol, "atol_at_worst": self.atol,
                "unsupported_reasons": list(self.unsupported_reasons)}


def summarize(results: Iterable[CaseResult]) -> list[Summary]:
    """Group results by (op, dtype, pinned provider), worst errors and the tolerance of the worst case;
    a row names the provider(s) whose kernels ran ("decomposed" for the op's decomposition)."""
    groups: dict[tuple[str, str, str], list[CaseResult]] = {}
    for r in results:
        groups.setdefault((r.op, r.dtype, r.pinned), []).append(r)
    out = []
    for (op, dtype, pinned), rs in sorted(groups.items()):
        provider = pinned or ", ".join(sorted({r.provider for r in rs if r.provider})) or "-"
        measured = [r for r in rs if r.worst_ratio is not None]
        worst = max(measured, key=lambda r: r.worst_ratio or 0.0) if measured else None  # measured: not None
        out.append(Summary(
            op=op, dtype=dtype, provider=provider,
            passed=sum(r.status == PASSED for r in rs), failed=sum(r.status == FAILED for r in rs),
            unsupported=sum(r.status == UNSUPPORTED for r in rs),
            max_abs=max([r.max_abs for r in measured if r.max_abs is not None], default=0.0),
            max_rel=max([r.max_rel for r in measured if r.max_rel is not None], default=0.0),
            worst_ratio=(worst.worst_ratio or 0.0) if worst else 0.0,
            rtol=worst.rtol if worst else None, atol=worst.atol if worst else None,
            unsupported_reasons=tuple(sorted({r.message for r in rs if r.status == UNSUPPORTED}))))
    return out


def _num(x: Optional[float]) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:.1e}" if x else "0"


def table(summaries: list[Summary]) -> str:
    """A fixed-width terminal table."""
    w = max([len(s.op) for s in summaries] + [2]) + 2
    pw = max([len(s.provider) for s in summaries] + [8]) + 2
    head = f"{'op':<{w}}{'dtype':<9}{'provider':<{pw}}{'pass':>6}{'fail':>6}{'unsup':>6}  {'max abs':>8} " \
           f"{'max rel':>8} {'err/tol':>8} {'rtol':>8}  verdict"
    lines = [head, "-" * len(head)]
    for s in summaries:
        lines.append(f"{s.op:<{w}}{s.dtype:<9}{s.provider:<{pw}}{s.passed:>6}{s.failed:>6}{s.unsupported:>6}  "
                     f"{_num(s.max_abs):>8} {_num(s.max_rel):>8} {s.worst_ratio:>8.3f} {_num(s.rtol):>8}  {s.verdict}")
    return "\n".join(lines)


def failures_text(results: Iterable[CaseResult], limit: int = 20, tracebacks: bool = False) -> str:
    """The failed cases, each with its message and one-line reproduction."""
    failed = [r for r in results if r.status == FAILED]
    lines = []
    for r in failed[:limit]:
        lines.append(f"FAILED {r.case} [{r.dtype}]: {r.message}\n  reproduce: {r.repro}")
        if tracebacks and r.traceback:
            lines.append("  " + r.traceback.rstrip().replace("\n", "\n  "))
    if len(failed) > limit:
        lines.append(f"... and {len(failed) - limit} more failures (see the JSON report)")
    return "\n".join(lines)


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def json_report(runs: dict[str, dict]) -> dict:
    """The versioned report: ``runs`` maps a device name (a fleet run: ``host:device``) to {"backend",
    "version", "mode", "results"}, "device" (its name, dtypes and driver facts, `suite.device_facts`),
    "providers" (the versions of the kernel providers that ran) and, from a fleet run, "node" (facts)
    and "lost" (a reason)."""
    devices = {}
    for dev in sorted(runs):
        run = runs[dev]
        results: list[CaseResult] = run["results"]
        devices[dev] = {
            "backend": run["backend"], "backend_version": run["version"], "mode": run["mode"],
            "totals": {s: sum(r.status == s for r in results) for s in (PASSED, FAILED, UNSUPPORTED)},
            "summary": [{k: _clean(v) for k, v in s.to_dict().items()} for s in summarize(results)],
            "cases": [{k: _clean(v) for k, v in r.to_dict().items()} for r in results],
        }
        for key in ("device", "providers"):  # what it ran on (no provider ran: {})
            if run.get(key) is not None:
                devices[dev][key] = run[key]
        for key in ("node", "lost"):  # a fleet run's column: its node; why it was lost
            if run.get(key):
                devices[dev][key] = run[key]
    return {"format": FORMAT, "version": VERSION, "numpy": np.__version__, "devices": devices}


def write_json(report: dict, path: str) -> None:
    """Write ``report`` at ``path``; a path ending in ``.gz`` gets the same text gzip-compressed (a full
    run's report shrinks about 15 times; no time stamp in the gzip header, so two equal runs still give
    identical files)."""
    text = json.dumps(report, indent=1, sort_keys=True) + "\n"
    if path.endswith(".gz"):
        with open(path, "wb") as fh:
            fh.write(gzip.compress(text.encode(), mtime=0))
    else:
        with open(path, "w") as fh:
            fh.write(text)


def matrix(runs: dict[str, dict]) -> str:
    """Ops x devices: each cell the verdict over every dtype run there (Markdown table)."""
    devs = sorted(runs)
    per_dev = {d: summarize(runs[d]["results"]) for d in devs}
    ops = sorted({s.op for d in devs for s in per_dev[d]})
    lines = ["| op | " + " | ".join(devs) + " |", "|---|" + "---|" * len(devs)]
    for op in ops:
        cells = []
        for d in devs:
            if runs[d].get("lost"):
                cells.append("LOST")
                continue
            rows = [s for s in per_dev[d] if s.op == op]
            passed = sum(s.passed for s in rows)
            failed = sum(s.failed for s in rows)
            unsup = sum(s.unsupported for s in rows)
            cell = "FAIL " if failed else ("ok " if passed else "unsupported ")
            cells.append(cell + f"{passed}/{passed + failed}" + (f" (+{unsup} unsup.)" if unsup else ""))
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _facts_lines(run: dict) -> list[str]:
    """The Markdown lines saying what a run ran on: device, driver, kernel providers and a fleet
    column's node (with the backends that did not load there, and why)."""
    lines = []
    device, node = run.get("device"), run.get("node")
    if device:
        lines.append(f"- Device: {device['name'] or '-'} (dtypes {', '.join(device['dtypes'])})")
        if device.get("driver"):
            lines.append("- Driver: " + "; ".join(f"{k}: {v}" for k, v in device["driver"].items()))
    if run.get("providers"):
        lines.append("- Kernel providers that ran: " + ", ".join(f"{k} {v}" for k, v in run["providers"].items()))
    if node:
        lines.append(f"- Node {node['host']} ({node['ip']}, id {node['node_id'][:12]}): Python {node['python']}, "
                     f"NumPy {node['numpy']}, {node['platform']}")
        if node.get("backends_not_loaded"):
            lines.append("- Backends not loaded on that node: " + "; ".join(
                f"{name} ({why})" for name, why in sorted(node["backends_not_loaded"].items())))
    return lines + [""] if lines else []


def markdown(runs: dict[str, dict]) -> str:
    """The Markdown report: the matrix, then per device its summary table and failures."""
    parts = ["# opdispatch conformance report", "", "## Ops x devices", "", matrix(runs), ""]
    for dev in sorted(runs):
        run = runs[dev]
        results = run["results"]
        parts += [f"## {dev} ({run['backend']} {run['version']}, {run['mode']} mode)", ""]
        parts += _facts_lines(run)
        if run.get("lost"):
            parts += [f"LOST: {run['lost']}", ""]
            continue
        parts += ["| op | dtype | provider | passed | failed | unsupported | max abs err | max rel err | err/tol "
                  "| rtol | verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in summarize(results):
            parts.append(f"| {s.op} | {s.dtype} | {s.provider} | {s.passed} | {s.failed} | {s.unsupported} | "
                         f"{_num(s.max_abs)} | {_num(s.max_rel)} | {s.worst_ratio:.3f} | {_num(s.rtol)} | "
                         f"{s.verdict} |")
        reasons = sorted({(r.op, r.message) for r in results if r.status == UNSUPPORTED})
        if reasons:
            parts += ["", "Unsupported (declared by the backend):", ""]
            parts += [f"- {op}: {msg}" for op, msg in reasons]
        fails = failures_text(results, limit=50)
        if fails:
            parts += ["", "Failures:", "", "```", fails, "```"]
        parts.append("")
    return "\n".join(parts)
