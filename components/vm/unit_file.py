"""The systemd unit file format: INI sections of key=value lines, built from data."""

from __future__ import annotations


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def render_unit(sections: dict[str, dict[str, str | list[str]]]) -> str:
    """A systemd unit or drop-in: INI sections of key=value lines (a list: the key once per value, as
    for several ExecStart= of a oneshot service)."""
    rendered = []
    for section, entries in sections.items():
        lines = [f"{key}={value}" for key, values in entries.items() for value in _as_list(values)]
        rendered.append("\n".join([f"[{section}]", *lines]))
    return "\n\n".join(rendered) + "\n"


def every_minutes_timer(description: str, minutes: int, unit: str) -> dict[str, dict[str, str | list[str]]]:
    """A timer that starts `unit` `minutes` after boot and then every `minutes` (give or take one)."""
    return {
        "Unit": {"Description": description},
        "Timer": {
            "OnActiveSec": f"{minutes}min",
            "OnUnitActiveSec": f"{minutes}min",
            "RandomizedDelaySec": "1min",
            "Unit": unit,
        },
        "Install": {"WantedBy": "timers.target"},
    }
