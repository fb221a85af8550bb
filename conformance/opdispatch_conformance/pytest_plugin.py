"""pytest entry of the conformance suite (registered through the ``pytest11`` entry point).

    pytest --pyargs opdispatch_conformance --od-device opencl:0 [--od-dtypes float32] [--od-ops conv2d]

runs the same cases as ``opdispatch conformance``, one pytest test per (device, dtype, case), and
the gradient check of each differentiable case (fixture ``od_conformance_gradient_case``).
Without ``--od-device`` every available device is checked. The options are inert for test
suites that do not use the ``od_conformance_case`` fixture.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opdispatch", "opdispatch conformance")
    group.addoption("--od-device", action="append", default=[], help="device to check (repeatable; default: all)")
    group.addoption("--od-dtypes", default="", help="comma-separated dtypes (default: all the device supports)")
    group.addoption("--od-ops", default="", help="comma-separated ops (default: all)")
    group.addoption("--od-random", type=int, default=10, help="seeded random cases per op")
    group.addoption("--od-seed", type=int, default=0, help="seed of the random cases")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = [n for n in ("od_conformance_case", "od_conformance_gradient_case") if n in metafunc.fixturenames]
    if not names:
        return
    import opdispatch as od
    from opdispatch_conformance.gradients import gradient_cases
    from opdispatch_conformance.cases import applies
    from opdispatch_conformance.suite import check_dtypes, collect_cases, default_dtypes

    opt = metafunc.config.getoption
    devices = [od.Device(d) for d in opt("--od-device")] or od.devices()
    ops = [o for o in opt("--od-ops").split(",") if o] or None
    cases = collect_cases(ops, random_per_op=opt("--od-random"), seed=opt("--od-seed"))
    if names[0] == "od_conformance_gradient_case":
        cases = gradient_cases(cases)
    params, ids = [], []
    for dev in devices:
        given = [d for d in opt("--od-dtypes").split(",") if d]
        try:
            dtypes = check_dtypes(given) if given else default_dtypes(dev)
        except od.InvalidArgumentError as exc:
            raise pytest.UsageError(f"--od-dtypes: {exc}") from None
        for case in cases:
            for dtype in dtypes:
                if not applies(case, dtype) or (names[0] == "od_conformance_gradient_case"
                                                and dtype not in ("float16", "float32", "float64")):
                    continue
                params.append((dev, dtype, case))
                ids.append(f"{dev}-{dtype}-{case.name}")
    metafunc.parametrize(names[0], params, ids=ids)
