"""Issue 18 points 5 and 6 under Pulumi's mocks: the order in which an HA stack restarts its nodes.

- every node leaves the target group before anything on it can stop Harbor (the installer of an
  upgrade, the start) and rejoins it, healthy, before the next node leaves;
- the leave runs again exactly when the start does (the same triggers);
- on a new harborVersion, nodes 1..N-1 leave and stop their older Harbor, and the database is
  snapshotted, before node 0 starts the new version;
- every node drains itself around an unattended runtime upgrade, each at its own hour;
- one VM has none of it.
"""

from __future__ import annotations

import pytest

from components.aws.load_balancer import DEREGISTRATION_DELAY_SECONDS
from components.aws.target_drain import DRAIN_MARGIN_SECONDS
from components.vm.files import script
from components.vm.runtime_drain import (
    APT_DRAIN_PATH,
    PREVIOUS_HOLD_PATH,
    render_apt_drain_conf,
    runtime_drain_files,
    upgrade_timer_dropin,
)
from components.vm.unit_file import render_unit
from tests.standins.pulumi_harness import dev_config, run_program

DRAIN = "pulumi-python:dynamic/elbv2:TargetDrain"


def config(**overrides) -> dict:
    return {**dev_config(), **{f"harbor-cache:{key}": value for key, value in overrides.items()}}


@pytest.fixture(scope="module")
def ha():
    return run_program(config(replicas=3))


def depends(run, name: str) -> set[str]:
    """Every resource `name` waits for, directly or through others."""
    by_urn = {r.urn: r for r in run.registrations}
    seen: set[str] = set()
    todo = list(run.named(name).dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen or urn not in by_urn:
            continue
        seen.add(urn)
        todo += by_urn[urn].dependencies
    return {by_urn[urn].name for urn in seen}


def install(index: int) -> str:
    return "harbor-install" if index == 0 else f"harbor-install-{index}"


def test_each_node_leaves_before_its_harbor_can_stop_and_rejoins_before_the_next_leaves(ha):
    for index in range(3):
        node = install(index)
        for step in ("installer", "start"):
            assert f"{node}-leave" in depends(ha, f"{node}-{step}"), f"{node}-{step} before the node left"
        assert f"{node}-ready" in depends(ha, f"{node}-rejoin")
        if index:
            assert f"{install(index - 1)}-rejoin" in depends(ha, f"{node}-leave"), "two nodes out at once"
    leave = ha.named("harbor-install-1-leave").inputs
    assert leave["action"] == "leave" and leave["instance_id"] == "harbor-vm-1-instance-id"
    assert leave["timeout_seconds"] == DEREGISTRATION_DELAY_SECONDS + DRAIN_MARGIN_SECONDS
    assert ha.named("harbor-install-1-rejoin").inputs["action"] == "rejoin"


def test_a_node_leaves_exactly_when_its_harbor_restarts(ha):
    for index in range(3):
        node = install(index)
        assert ha.named(f"{node}-leave").inputs["triggers"] == ha.named(f"{node}-start").inputs["triggers"]
        assert ha.named(f"{node}-rejoin").inputs["triggers"] == [f"{node}-ready-id"]


def test_configuration_and_the_name_wait_for_nodes_back_in_the_load_balancer(ha):
    harbor_objects = [r for r in ha.registrations if r.type.startswith("pulumi-python:dynamic/harbor:")]
    assert harbor_objects and all("harbor-install-2-rejoin" in depends(ha, r.name) for r in harbor_objects)
    alias = next(r for r in ha.of_type("aws:route53/record:Record") if r.inputs.get("aliases"))
    assert "harbor-install-rejoin" in depends(ha, alias.name)


def test_a_new_version_stops_the_other_nodes_and_snapshots_the_database_before_node_0_migrates(ha):
    node_0_installer = depends(ha, "harbor-install-installer")
    for index in (1, 2):
        hold = ha.named(f"harbor-install-{index}-upgrade-hold-stop")
        assert hold.inputs["triggers"] == [f"harbor-vm-{index}-instance-id", "v2.15.2"]
        assert hold.inputs["stdin"] == script("hold-harbor.sh")
        assert hold.inputs["create"] == "sudo HARBOR_VERSION=v2.15.2 bash -s"
        assert f"harbor-install-{index}-upgrade-leave" in depends(ha, hold.name), "out of the load balancer before it stops"
        assert hold.name in node_0_installer and hold.name in depends(ha, "harbor-install-leave")
    snapshot = ha.named("harbor-data-db-before-upgrade")
    assert snapshot.retain_on_delete is True and snapshot.inputs["dbInstanceIdentifier"].startswith("harbor-cache-")
    assert snapshot.inputs["dbSnapshotIdentifier"].startswith("harbor-cache-dev-before-v2-15-2-")
    assert snapshot.name in node_0_installer
    assert ha.named("harbor-data-db-upgrade-snapshot-suffix").inputs["keepers"] == {"harborVersion": "v2.15.2"}


def test_another_version_draws_another_snapshot():
    newer = run_program(config(replicas=2, harborVersion="v2.15.3"))
    identifier = newer.named("harbor-data-db-before-upgrade").inputs["dbSnapshotIdentifier"]
    assert identifier.startswith("harbor-cache-dev-before-v2-15-3-")
    assert newer.named("harbor-data-db-upgrade-snapshot-suffix").inputs["keepers"] == {"harborVersion": "v2.15.3"}


DRAIN_STEPS = ("drain-script", "drain-tmpfiles", "drain-rejoin-dropin", "upgrade-timer")


def test_each_ha_node_drains_itself_around_runtime_upgrades_at_its_own_hour(ha):
    timers = set()
    for index in range(3):
        node = install(index)
        files = runtime_drain_files(index)
        laid = {ha.named(f"{node}-{step}").inputs["stdin"] for step in DRAIN_STEPS}
        assert laid == {text for path, text in files.items() if path != APT_DRAIN_PATH}
        timers.add(ha.named(f"{node}-upgrade-timer").inputs["stdin"])
        assert ha.named(f"{node}-upgrade-timer").inputs["stdin"] == render_unit(upgrade_timer_dropin(index))
        hook = ha.named(f"{node}-drain-apt-hook").inputs
        assert hook["stdin"] == render_apt_drain_conf() == files[APT_DRAIN_PATH]
        # The hold goes in the same step that puts the drain in its place, not before.
        assert PREVIOUS_HOLD_PATH in hook["create"] and hook["create"].index(APT_DRAIN_PATH) < hook["create"].index("rm -f")
        # The hook only once Harbor runs with the ready location that knows the mark, and what it calls is there.
        before = {f"{node}-ready", f"{node}-start", *(f"{node}-{step}" for step in DRAIN_STEPS)}
        assert before <= depends(ha, f"{node}-drain-apt-hook")
    assert len(timers) == 3, "two nodes would upgrade their runtime in the same hour"
    assert not [r for r in ha.registrations if r.name.endswith("-unattended-hold")]


def test_one_vm_neither_drains_nor_holds():
    single = run_program(config())
    assert not single.of_type(DRAIN)
    assert not [r for r in single.registrations if any(word in r.name for word in ("hold", "rejoin", "drain", "upgrade-timer"))]
    stores = run_program(config(externalServices=True))
    # One VM on RDS still gets its snapshot before a new version: the migration is the same.
    assert stores.named("harbor-data-db-before-upgrade")
