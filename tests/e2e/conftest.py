"""Shared e2e fixtures: `lab` gives a test a Lab that is closed afterwards.

When a test that uses `lab` fails, its report gets a "lab dump" section with
`ovs-ofctl dump-flows` of every bridge of every OVS the lab owns, followed by whatever
the test registered in `lab.on_failure` (callables returning text, e.g. an app's log).
A test with a topology up (`request.node.network`, test_topologies.bring_up) gets the
flows of its bridges, and one with an `app` (a ProbeController) the app's counters and
the end of its log.
"""
import json
import os

import pytest

from topologies.controller import ProbeController
from topologies.lab import Lab, flows_report, missing_requirements

APP_LOG_TAIL = 400          # lines of the app's log in a failed test's report

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
    if report.when != "call" or not report.failed:
        return
    if isinstance(lab, Lab):
        report.sections.append(("lab dump", lab.failure_report()))
    network = getattr(item, "network", None)
    if network is not None:
        report.sections.append(("topology flows", flows_report(
            network.ovs(host) for host in network.state["hosts"])))
    app = getattr(item, "funcargs", {}).get("app")
    if isinstance(app, ProbeController):
        try:
            stats = json.dumps(app.request("GET", "/probe/stats")[1], sort_keys=True)
        except Exception as e:      # the app may be what failed
            stats = "GET /probe/stats failed: %s" % e
        report.sections.append(("app stats", stats))
        report.sections.append(("app log", "\n".join(app.log().splitlines()[-APP_LOG_TAIL:])))

