"""Reading raw configuration values into types, collecting every problem on the way.

Values arrive as strings from the Pulumi engine and typed from a stack file; a problem names its
key, the value (never for secrets) and what is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

PROJECT = "harbor-cache"


class Secret:
    """A plain value that must never be printed: repr and str hide it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        prefix = "" if self.key.startswith("aws:") else f"{PROJECT}:"
        return f"{prefix}{self.key}: {self.message}"


class SettingsError(ValueError):
    """Every problem found in the configuration, each naming its key."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration ({len(problems)} problem(s)); nothing was created:\n{lines}")


class ConfigReader:
    """Reads raw values (strings from the Pulumi engine, typed values from a stack file) into types."""

    def __init__(self, raw: Mapping[str, Any], defaults: Mapping[str, Any], secret_keys: Collection[str] = ()) -> None:
        self.raw = raw
        self.defaults = defaults
        self.secret_keys = frozenset(secret_keys)
        self.problems: list[Problem] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(key, message))

    def value(self, key: str) -> Any:
        value = self.raw.get(key)
        return self.defaults.get(key) if value is None else value

    def string(self, key: str, required: bool = False) -> str:
        value = self.value(key)
        if value is None or value == "":
            if required:
                self.fail(key, f"is required; set it with `pulumi config set {key} <value>`")
            return ""
        if not isinstance(value, str):
            self.fail(key, f"{value!r} is not a string")
            return ""
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.value(key)
        try:
            number = int(value) if not isinstance(value, bool) and str(value).strip().lstrip("-").isdigit() else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            self.fail(key, f"{value!r} is not a whole number; accepted: {low}..{high}")
            return low
        if not low <= number <= high:
            self.fail(key, f"{number} is out of range; accepted: {low}..{high}")
        return number

    def boolean(self, key: str) -> bool:
        value = self.value(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, f"{value!r} is not a boolean; accepted: true or false")
        return False

    def structured(self, key: str, default: Any) -> Any:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                shown = "the value" if key in self.secret_keys else repr(value)
                self.fail(key, f"{shown} is not valid JSON ({error.msg})")
                return default
        return value
