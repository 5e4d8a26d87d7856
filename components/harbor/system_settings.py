"""Harbor's system settings that a cache must not leave at Harbor's defaults: the dynamic provider and
the resource.

- `project_creation_restriction: adminonly` (Harbor's default is `everyone`). With `everyone`, any
  account that can log in (every OIDC user, and even the nodes' pull robot: handler/project.go
  CreateProject lets system robots create projects) may make projects of its own, with unlimited
  storage (storage_per_project defaults to -1): push without limit onto the data volume that also
  holds the database (or into the bucket), host images under the cache's trusted name, and add
  webhooks to its project that make Harbor call into the VPC. A cache needs no project but its
  proxy projects, which the admin makes.
- `self_registration: false` (Harbor's default too, owned so a change shows as drift). With
  database logins a self-registered account is a user other than admin, which locks `auth_mode`
  for good (controller/config authModeCanBeModified): OIDC could then never be switched on.
- `robot_name_prefix: robot$` (Harbor's default, owned so a change shows as drift and is undone).
  Harbor stores a robot's name without it and shows and authenticates it as the prefix *as
  configured now* + that name (controller/robot/controller.go populate, server/middleware/security/
  robot.go Generate, both via lib/config/userconfig.go RobotPrefix). So an admin who changes it after
  our robots exist renames them under our feet: the nodes' pull login (the robot name in state) is
  refused, the robot provider's update must repeat the name as shown (handler/robot.go
  updateV2Robot: 400 "cannot update the level or name of robot") and its delete, which deletes only
  the robot of the name in state, leaves the robot behind. Owned, the change shows in a refresh and
  the next `up` writes `robot$` back (so does the first `up` of a stack whose state predates this
  setting); the robots depend on this resource (components/harbor/config.py), so their steps run
  after that, under the name they were made with. What a refresh does to the robots meanwhile, and
  why the nodes' login is built from this prefix: components/harbor/config.py robot_login_name.
  Harbor accepts any string here (see PREFIX_VALIDATION below), so `validate` refuses nothing more.

All three are read back by a refresh and drift-checked like every other object. Deleting the resource
leaves them as they are (opening project creation up again is never what removing it means, and
renaming every robot in Harbor even less).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CreateResult, ReadResult, UpdateResult

from components.harbor.provider_base import Field, HarborConnection, HarborProvider, is_unknown, with_secret_outputs

# lib/config/metadata/type.go ProjectCreationRestrictionType validate.
PROJECT_CREATION_RESTRICTIONS = ("adminonly", "everyone")
# Harbor's default (lib/config/metadata/metadatalist.go ConfigList: robot_name_prefix, DefaultValue
# "robot$"), the name the nodes' robot was made with on every stack whose admin never changed it.
ROBOT_NAME_PREFIX = "robot$"
# PREFIX_VALIDATION: what PUT /configurations checks of robot_name_prefix (Harbor v2.15.2): the body is
# the swagger `Configurations` model, where it is a string (api/v2.0/swagger.yaml; another JSON type
# fails decoding, which check's type test already refuses); handler/config.go UpdateConfigurations ->
# controller/config/controller.go validateCfg -> pkg/config/manager.go ValidateCfg: a user-scope item
# of the metadata list, then metadata.NewCfgValue -> its ItemType's validate, `StringType` for this
# item, whose validate accepts every string, the empty one included; the other rules (auth-mode lock,
# LdapGroupValidateRule, verifySkipAuditLogCfg, verifyValueLengthCfg) do not look at it, and the
# value is stored in properties.v, a `text` column (migration 0012_1.9.4), so no length limit either.
# So any string is accepted here, as by Harbor (and by the emulator, tests/standins/harbor_emulator.py).


class HarborSystemSettingsProvider(HarborProvider):
    KIND = "system settings"
    FIELDS = {
        "project_creation_restriction": Field(str, "adminonly"),
        "self_registration": Field(bool, False),
        "robot_name_prefix": Field(str, ROBOT_NAME_PREFIX),
    }

    def validate(self, inputs: dict[str, Any]) -> list[CheckFailure]:
        # robot_name_prefix: any string (PREFIX_VALIDATION); check has refused another type already.
        value = inputs["project_creation_restriction"]
        if not is_unknown(value) and value not in PROJECT_CREATION_RESTRICTIONS:
            return [
                CheckFailure(
                    "project_creation_restriction",
                    f"project_creation_restriction must be one of {', '.join(PROJECT_CREATION_RESTRICTIONS)}, got {value!r}",
                )
            ]
        return []

    def verify_path(self, id_: str) -> str:
        return "/configurations"

    def outputs(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**self.connection(props), **{key: props[key] for key in self.FIELDS}}

    def apply(self, props: dict[str, Any]) -> None:
        # PUT /configurations changes only the keys sent (handler/config.go UpdateConfigurations).
        self.client(props).request("PUT", "/configurations", {key: props[key] for key in self.FIELDS})

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = self.typed(props)
        self.apply(props)
        return CreateResult("system-settings", self.outputs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = self.typed(props)
        current = self.client(props).get("/configurations") or {}
        # Harbor shows every user setting, defaults included (controller/config ConvertForGet); one
        # missing reads as None, which no input equals, so the next `up` writes it.
        values = {key: (current.get(key) or {}).get("value") for key in self.FIELDS}
        return ReadResult(id_, self.outputs({**props, **values}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        news = self.typed(news)  # olds untyped: a setting the state lacks is still unapplied
        self.apply_or_verify(id_, olds, news, self.apply)
        return UpdateResult(self.outputs(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Leaves Harbor's settings as they are (see the module docstring)."""


class HarborSystemSettings(pulumi.dynamic.Resource, module="harbor", name="SystemSettings"):
    def __init__(
        self, name: str, connection: HarborConnection, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            HarborSystemSettingsProvider(), name, {**connection.props(), **props}, with_secret_outputs(opts, "harbor_password")
        )
