"""HA nodes share one RDS database: their connection pools fit its max_connections, and job logs
live in that database so any node's core can show a job that another node ran."""

from __future__ import annotations

import pytest
import yaml

from components.vm.harbor_yml import (
    EXTERNAL_DB_CONNECTION_BUDGET,
    EXTERNAL_DB_MIN_OPEN_CONNS,
    EXTERNAL_DB_POOLS_PER_NODE,
    render_harbor_yml,
)
from tests.settings.test_settings import parse
from tests.vm.test_data_modes import ENDPOINTS, SECRETS, run_prepare


def rendered(**overrides) -> dict:
    return yaml.safe_load(render_harbor_yml(parse(**overrides), SECRETS, ENDPOINTS))


@pytest.mark.parametrize("replicas", range(1, 7))
def test_every_pool_of_every_node_fits_the_databases_connection_budget(replicas):
    database = rendered(replicas=replicas, externalServices=True, storage="s3")["external_database"]["harbor"]
    pools = EXTERNAL_DB_POOLS_PER_NODE * replicas
    assert pools * database["max_open_conns"] <= EXTERNAL_DB_CONNECTION_BUDGET
    assert database["max_open_conns"] >= EXTERNAL_DB_MIN_OPEN_CONNS
    assert 0 < database["max_idle_conns"] <= database["max_open_conns"]


def test_one_vm_on_rds_keeps_its_pools_as_they_were():
    database = rendered(externalServices=True)["external_database"]["harbor"]
    assert (database["max_open_conns"], database["max_idle_conns"]) == (50, 10)


def test_ha_keeps_job_logs_in_the_shared_database_and_one_vm_in_files():
    assert rendered(replicas=3)["jobservice"]["job_loggers"] == ["STD_OUTPUT", "DB"]
    assert rendered()["jobservice"]["job_loggers"] == ["STD_OUTPUT", "FILE"]
    assert rendered(externalServices=True)["jobservice"]["job_loggers"] == ["STD_OUTPUT", "FILE"]


def test_harbors_prepare_accepts_the_ha_harbor_yml_with_the_db_job_logger(tmp_path):
    document = rendered(replicas=3)
    out = run_prepare(document, tmp_path)
    jobservice = yaml.safe_load((out / "config/jobservice/config.yml").read_text())
    assert [logger["name"] for logger in jobservice["job_loggers"]] == ["STD_OUTPUT", "DB"]
    assert jobservice["job_loggers"][1]["sweeper"]["duration"] == document["jobservice"]["logger_sweeper_duration"]
    core_env = (out / "config/core/env").read_text()
    assert f"POSTGRESQL_MAX_OPEN_CONNS={document['external_database']['harbor']['max_open_conns']}" in core_env
