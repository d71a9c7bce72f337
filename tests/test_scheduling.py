"""The suite's schedule works as conftest.py says: under ``pytest -n 2 --dist loadgroup`` a
test's node id carries its ``xdist_group``, which is what keeps a file's tests (and its
module fixtures, fitted once) on one worker.

pytest 9.2 with pytest-xdist 3.8 silently drops the tag (xdist writes ``Node._nodeid``, which
pytest 9.2 no longer reads): every test is then scheduled alone, and a module's fit is made on
both workers. pyproject.toml bounds pytest below 9.2 for that reason.
"""

from __future__ import annotations

import os

import pytest


def test_the_node_id_carries_its_xdist_group(request):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("runs under pytest-xdist only (the README's `pytest -n 2`)")
    if request.config.getoption("dist") != "no" or not request.config.getvalue("loadgroup"):
        pytest.skip("runs under --dist loadgroup only (pyproject's addopts)")
    assert request.node.nodeid.endswith("@test_scheduling"), (
        f"{request.node.nodeid}: pytest-xdist did not tag the node id with its group, so "
        "--dist loadgroup schedules tests one by one (see pyproject.toml's pytest bound)")
