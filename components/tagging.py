"""Tags every AWS resource of a stack carries, so cost reports and DLM can find them."""

from __future__ import annotations

from components.settings import Settings

SNAPSHOT_TAG = "harbor-cache:snapshot"
PUBLIC_ACCESS_TAG = "harbor-cache:allow-public-access"


def resource_tags(settings: Settings, name: str, **extra: str) -> dict[str, str]:
    return {**settings.tags, "Name": name, "harbor-cache:stack": settings.stack, **extra}
