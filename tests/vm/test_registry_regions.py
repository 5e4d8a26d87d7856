"""storage: s3 in every commercial region (issue 18): the registry's own s3 driver (distribution
v2.8.3's s3-aws on aws-sdk-go 1.15.11, tests/standins/registry_go) accepts the config.yml that Harbor's
prepare makes from our harbor.yml in regions that SDK has never heard of.

aws-sdk-go 1.15.11 (August 2018) lists 15 commercial regions; the driver's FromParameters refuses
any other with "invalid region provided" unless `regionendpoint` is set
(registry/storage/driver/s3-aws/s3.go). Building the driver contacts nothing, so this needs no
network: the write itself, through the endpoint, is tests/vm/test_registry_s3.py's.
"""

from __future__ import annotations

import subprocess
import urllib.parse
from pathlib import Path

import pytest
import yaml

from components.settings import settings as s
from components.vm.harbor_yml import render_harbor_yml
from tests.settings.test_settings import dev_raw
from tests.standins.registry_harness import harness_binary, harness_environment, parse_result
from tests.vm.test_data_modes import ENDPOINTS, SECRETS
from tests.vm.test_real_compose import prepare

# Regions after August 2018: eu-north-1 (Dec 2018) and me-central-1 (2022); eu-central-1 is one the
# SDK knows, so it worked before and must keep working.
REGIONS = ("eu-north-1", "me-central-1", "eu-central-1")
UNKNOWN_TO_THE_SDK = ("eu-north-1", "me-central-1")


def parse_in(region: str, **overrides) -> s.Settings:
    return s.parse_settings({**dev_raw(), **overrides}, stack="dev", region=region)


@pytest.fixture(scope="module")
def harness() -> Path:
    return harness_binary()


def registry_config(region: str, work: Path) -> Path:
    settings = parse_in(region, storage="s3")
    return prepare(render_harbor_yml(settings, SECRETS, ENDPOINTS), work) / "config" / "registry" / "config.yml"


def build_driver(harness: Path, config: Path, home: Path) -> dict:
    completed = subprocess.run(
        [str(harness), "s3", str(config), "-build-only"],
        env=harness_environment(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return parse_result(completed)


@pytest.mark.parametrize("region", REGIONS)
def test_the_registry_builds_its_s3_driver_from_prepares_config(harness, region, tmp_path):
    config = registry_config(region, tmp_path)
    storage = yaml.safe_load(config.read_text())["storage"]["s3"]
    assert storage["regionendpoint"] == f"https://s3.{region}.amazonaws.com"
    result = build_driver(harness, config, tmp_path)
    assert result["ok"] and result["region"] == region and result["regionendpoint"] == storage["regionendpoint"], result


@pytest.mark.parametrize("region", UNKNOWN_TO_THE_SDK)
def test_without_the_endpoint_the_registry_refuses_the_region(harness, region, tmp_path):
    """The same config without `regionendpoint`: what the registry did before (readiness never came)."""
    config = registry_config(region, tmp_path)
    document = yaml.safe_load(config.read_text())
    del document["storage"]["s3"]["regionendpoint"]
    config.write_text(yaml.safe_dump(document))
    result = build_driver(harness, config, tmp_path)
    assert not result["ok"] and result["error"] == f"invalid region provided: {region}", result


@pytest.mark.parametrize("region", UNKNOWN_TO_THE_SDK[:1] + REGIONS[2:])
def test_a_redirect_url_is_path_style_on_the_regional_endpoint(harness, region, tmp_path):
    """What a client must reach with `storageRedirect: true` (docs/scale.md): the driver's own presigned
    URL for a blob (blobserver.go ServeBlob asks URLFor), signed offline with session credentials as
    the instance role's: https://s3.<region>.amazonaws.com/<bucket>/..., not <bucket>.s3..., valid
    20 minutes (s3.go URLFor's default) and carrying the session token."""
    config = registry_config(region, tmp_path)
    blob = "/docker/registry/v2/blobs/sha256/ab/" + "ab" * 32 + "/data"
    session = {"AWS_ACCESS_KEY_ID": "ASIAPRESIGNPRESIGN00", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "session-token"}
    completed = subprocess.run(
        [str(harness), "s3", str(config), "-url", blob],
        env={**harness_environment(tmp_path), **session},
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = parse_result(completed)
    assert result["ok"], result
    url = urllib.parse.urlsplit(result["url"])
    assert (url.scheme, url.netloc) == ("https", f"s3.{region}.amazonaws.com"), result["url"]
    assert url.path == f"/{ENDPOINTS.bucket}{blob}", result["url"]
    query = urllib.parse.parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["1200"] and query["X-Amz-Security-Token"] == ["session-token"]
    assert query["X-Amz-Credential"][0].startswith("ASIAPRESIGNPRESIGN00/") and f"/{region}/s3/" in query["X-Amz-Credential"][0]
