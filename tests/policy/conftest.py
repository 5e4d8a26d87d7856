"""moto on loopback for the policy pack's lookups at `up` (policy/aws_lookups.py, tests/standins/moto_stack.py)."""

from __future__ import annotations

import urllib.request

import pytest


@pytest.fixture(scope="module")
def aws_server(tmp_path_factory):
    from tests.standins.moto_stack import aws_on_loopback

    with aws_on_loopback(str(tmp_path_factory.mktemp("aws"))) as (endpoint, environment):
        yield endpoint, environment


@pytest.fixture
def aws(aws_server):
    """moto, empty (moto's /moto-api/reset: its server shares one set of backends), and the pack's environment."""
    endpoint, environment = aws_server
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
    return endpoint, environment
