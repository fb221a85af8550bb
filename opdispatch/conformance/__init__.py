"""The conformance suite: cases, derived tolerances, the runner and reports.

Command line: ``opdispatch conformance --device D`` (or ``--all``); pytest:
``pytest --pyargs opdispatch.conformance --od-device D``. Both run the same cases.
"""
