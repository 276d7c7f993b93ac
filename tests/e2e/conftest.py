"""Shared e2e fixtures: `lab` gives a test a Lab that is closed afterwards.

When a test that uses `lab` fails, its report gets a "lab dump" section with
`ovs-ofctl dump-flows` of every bridge of every OVS the lab owns, followed by whatever
the test registered in `lab.on_failure` (callables returning text, e.g. an app's log).
"""
import os

import pytest

from topologies.lab import Lab, missing_requirements

# Outside CI these tests skip on a machine that cannot run them; in CI that must fail.
if os.environ.get('CI') and missing_requirements():
    raise pytest.UsageError('e2e tests cannot run: ' + missing_requirements())


@pytest.fixture
def lab():
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    lab = getattr(item, "funcargs", {}).get("lab")
    if report.when == "call" and report.failed and isinstance(lab, Lab):
        report.sections.append(("lab dump", lab.failure_report()))
