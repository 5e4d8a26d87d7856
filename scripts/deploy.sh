#!/usr/bin/env bash
# Deploys one environment with Pulumi's local file backend: no Pulumi Cloud account is needed.
# Usage: scripts/deploy.sh <stack> [extra `pulumi up` flags]
# State lives under PULUMI_BACKEND_URL (default file://~/.pulumi-harbor-cache); secrets in it are
# encrypted with a passphrase from PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: scripts/deploy.sh <stack> [pulumi up flags]}
shift
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$HOME/.pulumi-harbor-cache}
mkdir -p "${PULUMI_BACKEND_URL#file://}" 2>/dev/null || true
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  echo "set PULUMI_CONFIG_PASSPHRASE_FILE (or PULUMI_CONFIG_PASSPHRASE): it encrypts the secrets in the state" >&2
  exit 2
fi
pulumi install
pulumi stack select --create "$stack"
pulumi up --stack "$stack" "$@"
