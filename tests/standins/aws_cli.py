"""Stand-in for the AWS CLI v2 (`aws <service> <operation> --option value ...`), for the deploy preflight.

Answers from a scenario file (FAKE_AWS_SCENARIO: {"<service> <operation>": answer}) and logs each
call (FAKE_AWS_LOG). It is no more lenient than the real CLI where the preflight could go wrong:
- commands and options are the CLI's own names, derived as the CLI derives them from botocore's
  service model (awscli/clidriver.py: ServiceOperation names are `xform_name(operation, '-')`,
  arguments `xform_name(member, '-')`); an unknown operation or option, or a missing required one,
  exits 252 as the CLI does ("Command syntax was invalid", the CLI's return-codes page);
- an answer may only use fields of the operation's output shape (botocore's model), so a canned
  answer cannot carry a field the real service never sends;
- errors look like the CLI's (aws-cli v2 awscli/errorhandler.py): a service error prints botocore's
  ClientError text, "An error occurred (<Code>) when calling the <Operation> operation: <Message>",
  and exits 254 (ClientErrorHandler); missing credentials print NoCredentialsError's text plus the
  CLI's hint and exit 253 (NoCredentialsErrorHandler, the configuration error code).
Answer forms: {"output": {...}}, {"error": {"code": ..., "message": ...}}, {"no_credentials": true}.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.model import ListShape, Shape, StructureShape

# Global options the preflight uses, each with a value (awscli/data/cli.json).
GLOBAL_OPTIONS = {"--output", "--region", "--profile", "--endpoint-url"}
SYNTAX_ERROR, NO_CONFIGURATION, SERVICE_ERROR = 252, 253, 254
NO_CREDENTIALS = f'{NoCredentialsError()}. You can configure credentials by running "aws configure".'


def check_shape(value: Any, shape: Shape, where: str) -> None:
    if isinstance(shape, StructureShape):
        assert isinstance(value, dict), f"{where}: expected an object"
        for key, item in value.items():
            assert key in shape.members, f"{where}.{key}: not a field of {shape.name} in botocore's model"
            check_shape(item, shape.members[key], f"{where}.{key}")
    elif isinstance(shape, ListShape):
        assert isinstance(value, list), f"{where}: expected a list"
        for index, item in enumerate(value):
            check_shape(item, shape.member, f"{where}[{index}]")


def fail(code: int, message: str) -> int:
    print(f"\n{message}\n", file=sys.stderr)
    return code


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        return fail(SYNTAX_ERROR, "usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]")
    service, command, rest = argv[0], argv[1], argv[2:]
    session = botocore.session.get_session()
    if service not in session.get_available_services():
        return fail(SYNTAX_ERROR, f"aws: error: argument command: Invalid choice: {service!r}")
    model = session.get_service_model(service)
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    if command not in operations:
        return fail(SYNTAX_ERROR, f"aws: error: argument operation: Invalid choice: {command!r}")
    operation = model.operation_model(operations[command])
    members = {xform_name(name, "-"): name for name in (operation.input_shape.members if operation.input_shape else {})}
    given: dict[str, str] = {}
    options: dict[str, str] = {}
    while rest:
        option = rest.pop(0)
        if not option.startswith("--") or not rest:
            return fail(SYNTAX_ERROR, f"aws: error: unexpected {option!r}")
        value = rest.pop(0)
        if option in GLOBAL_OPTIONS:
            options[option] = value
        elif option[2:] in members:
            given[members[option[2:]]] = value
        else:
            return fail(SYNTAX_ERROR, f"aws: error: Unknown options: {option}")
    required = operation.input_shape.required_members if operation.input_shape else []
    missing = [xform_name(name, "-") for name in required if name not in given]
    if missing:
        return fail(SYNTAX_ERROR, f"aws: error: the following arguments are required: --{', --'.join(missing)}")
    assert options.get("--output", "json") == "json", "the preflight reads JSON"

    with Path(os.environ["FAKE_AWS_LOG"]).open("a") as log:
        log.write(json.dumps({"call": f"{service} {command}", "params": given, "options": options}) + "\n")
    scenario = json.loads(Path(os.environ["FAKE_AWS_SCENARIO"]).read_text())
    answer = scenario.get(f"{service} {command}")
    assert answer is not None, f"the scenario has no answer for {service} {command}"
    if answer.get("no_credentials"):
        return fail(NO_CONFIGURATION, NO_CREDENTIALS)
    if "error" in answer:
        error = {"Error": {"Code": answer["error"]["code"], "Message": answer["error"]["message"]}}
        return fail(SERVICE_ERROR, str(ClientError(error, operation.name)))
    check_shape(answer["output"], operation.output_shape, operation.name)
    print(json.dumps(answer["output"], indent=4))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
