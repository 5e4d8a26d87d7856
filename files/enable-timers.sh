#!/usr/bin/env bash
# Loads the units written before this step and starts the timers given as arguments (and keeps
# them enabled across reboots). A changed service file takes effect on the timer's next run.
set -euo pipefail
systemctl daemon-reload
for timer in "$@"; do
  systemctl enable --now "$timer"
  systemctl restart "$timer"
  systemctl --no-pager list-timers "$timer"
done
