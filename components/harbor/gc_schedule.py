"""Harbor's garbage-collection schedule (proxy projects get none by default): the dynamic provider and the resource."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CreateResult, ReadResult, UpdateResult

from components.harbor.provider_base import Field, HarborConnection, HarborProvider, is_unknown, with_secret_outputs
from components.settings.validators import validate_gc_cron

# Garbage collection


class HarborGcScheduleProvider(HarborProvider):
    KIND = "gc-schedule"
    FIELDS = {"cron": Field(str), "delete_untagged": Field(bool, True), "workers": Field(int, 1)}

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        failures = []
        if not is_unknown(inputs["cron"]) and validate_gc_cron(inputs["cron"]):
            failures.append(CheckFailure("cron", f"{inputs['cron']!r} {validate_gc_cron(inputs['cron'])}"))
        if not is_unknown(inputs["workers"]) and not 1 <= inputs["workers"] <= 10:
            failures.append(CheckFailure("workers", f"workers must be 1..10, got {inputs['workers']}"))
        return failures

    @staticmethod
    def body(props: dict[str, Any]) -> dict[str, Any]:
        # Harbor takes booleans and integers in parameters, whatever its spec says.
        return {
            "schedule": {"type": "Custom", "cron": props["cron"]},
            "parameters": {"delete_untagged": props["delete_untagged"], "workers": props["workers"]},
        }

    def verify_path(self, id_: str) -> str:
        return "/system/gc/schedule"

    def outputs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**self.connection(props), **{key: props[key] for key in self.FIELDS}}

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        self.client(props).request("POST", "/system/gc/schedule", self.body(props))
        return CreateResult("gc", self.outputs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = self.typed(props)
        current = self.client(props).get("/system/gc/schedule")
        schedule = (current or {}).get("schedule") if isinstance(current, dict) else None
        if not schedule or schedule.get("type") in (None, "", "None"):
            return ReadResult(None, {})
        # Harbor reports the parameters as `job_parameters`, a JSON string (handler/model/gc.go
        # GCSchedule.ToSwagger), not as the `parameters` object it takes.
        try:
            parameters = json.loads(current.get("job_parameters") or "{}")
        except json.JSONDecodeError:
            parameters = {}
        if not isinstance(parameters, dict):
            parameters = {}
        # Harbor keeps delete_untagged only as a boolean and workers only as an integer, else false
        # and 0 (handler/gc.go kick, controller/gc CreateSchedule): absent reads as that, never as
        # what the state holds.
        workers = parameters.get("workers")
        values = {
            "cron": schedule.get("cron") or "",
            "delete_untagged": parameters.get("delete_untagged") is True,
            "workers": workers if isinstance(workers, int) and not isinstance(workers, bool) else 0,
        }
        return ReadResult("gc", self.outputs({**props, **values}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        news = self.typed(news)  # olds untyped: a setting the state lacks is still unapplied
        self.apply_or_verify(
            id_, olds, news, lambda props: self.client(props).request("PUT", "/system/gc/schedule", self.body(props))
        )
        return UpdateResult(self.outputs(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = self.typed(props)
        self.client(props).request("PUT", "/system/gc/schedule", {"schedule": {"type": "None"}})


class HarborGcSchedule(pulumi.dynamic.Resource, module="harbor", name="GcSchedule"):
    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            HarborGcScheduleProvider(), name, {**connection.props(), **props}, with_secret_outputs(opts, "harbor_password")
        )
