"""Alarms as data: the AlarmSpec shape every alarm of HarborAlarms is built from (alarms.py, store_alarms.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm as data: `actions` are added to the topic ("recover"/"reboot" = EC2 actions)."""

    key: str
    description: str
    namespace: str
    metric: str
    dimensions: dict[str, pulumi.Input[str]]
    statistic: str
    comparison: str
    threshold: float
    period: int
    evaluation_periods: int
    treat_missing_data: str
    ec2_action: str = ""
