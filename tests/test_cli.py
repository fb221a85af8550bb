"""The ``opdispatch`` command: subcommands from installed distributions, the install hint without them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from opdispatch import cli


def test_conformance_is_a_subcommand_the_suite_installs(capsys):
    assert "conformance" in cli.installed_commands()
    assert cli.installed_commands()["conformance"].value == "opdispatch_conformance.cli:main"


def test_without_the_suite_the_command_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(cli, "installed_commands", lambda: {})
    assert cli.main(["conformance", "--all"]) == 2
    assert "pip install opdispatch-conformance" in capsys.readouterr().err


def test_devices_lists_backends_and_hidden_ones_on_request(capsys):
    assert cli.main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "numpy:0" in out and "reference:0" not in out
    assert cli.main(["devices", "--hidden"]) == 0
    assert "reference:0" in capsys.readouterr().out


def test_devices_lists_each_device_s_driver_facts(clean_registry, capsys):
    import opdispatch as od
    from opdispatch.backend import DeviceInfo
    from fake_backends import make_plugin

    od.register_plugin(make_plugin("drv", [], devices=[DeviceInfo(0, name="Example GPU",
                                                                  driver={"driver version": "550.54"})]), name="drv")
    assert cli.main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(i for i, line in enumerate(lines) if "drv:0" in line and "Example GPU" in line)
    assert lines[row + 1].split() == ["driver", "version:", "550.54"]
    numpy_row = next(i for i, line in enumerate(lines) if "numpy:0" in line)
    assert lines[numpy_row + 1].strip().startswith("numpy: ")  # the NumPy backend's own facts


def test_a_command_that_fails_to_load_is_reported_not_dumped(monkeypatch, capsys):
    class Broken:
        value = "broken_dist.cli:main"

        def load(self):
            raise ImportError("no module named broken_dist")

    monkeypatch.setattr(cli, "installed_commands", lambda: {"broken": Broken()})
    assert cli.main(["broken"]) == 2
    assert "the command 'broken' (broken_dist.cli:main) failed to load: ImportError" in capsys.readouterr().err


def test_kernels_listing_names_decompositions_and_rejects_unknown_ops(capsys):
    assert cli.main(["devices", "--kernels", "--device", "numpy:0", "--op", "silu"]) == 0
    assert "its decomposition (no kernel)" in capsys.readouterr().out
    assert cli.main(["devices", "--kernels", "--op", "nosuch"]) == 2
    assert "unknown op 'nosuch'" in capsys.readouterr().err


def test_kernels_listing_tells_apart_a_providers_kernels_by_their_dtypes(capsys):
    """NumPy has a float16 kernel and a float32/float64 one for most ops: each entry names its dtypes, so
    no op lists the same entry twice, and each entry is the od.kernels() row in the same place."""
    import opdispatch as od

    assert cli.main(["devices", "--kernels", "--device", "numpy:0"]) == 0
    lines = {line.split()[0]: line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines()
             if line.startswith("  ")}
    rows: dict[str, list] = {}
    for row in od.kernels("numpy:0"):
        rows.setdefault(row.op, []).append(row)
    several = [op for op, rs in rows.items() if len({r.provider for r in rs}) < len(rs)]
    assert "add" in several  # the case this is about: one provider, several kernels for one op
    for op, rs in rows.items():
        entries = lines[op].split(" > ")
        assert len(set(entries)) == len(entries), lines[op]
        for row, entry in zip(rs, entries):
            assert entry.startswith(f"{row.provider} (priority {row.priority}, {'/'.join(row.dtypes)}"), entry


@pytest.mark.parametrize("argv", [["ops"], ["ops", "--json"], ["ops", "--op", "conv2d", "--json"],
                                  ["devices"], ["devices", "--kernels"]], ids=" ".join)
def test_a_closed_stdout_ends_the_command_quietly(argv):
    """`opdispatch ops | head`: the reader is gone before the command writes (its end of the pipe is
    closed before the command starts), so every write fails; the command stops with 141, no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "opdispatch.cli", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == cli.EXIT_BROKEN_PIPE
