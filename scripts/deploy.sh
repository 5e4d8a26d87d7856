#!/usr/bin/env bash
# Deploys one environment with Pulumi's local file backend: no Pulumi Cloud account is needed.
# Usage: scripts/deploy.sh <stack> [extra `pulumi up` flags]
# State lives under PULUMI_BACKEND_URL (default file://~/.pulumi-harbor-cache). Secrets in it are
# encrypted with the stack's own secrets provider: the one its Pulumi.<stack>.yaml names
# (`secretsprovider:`), or for a new stack PULUMI_SECRETS_PROVIDER (recommended: one KMS key per
# stack, awskms://alias/harbor-cache-<stack>?region=<region>), or else a passphrase from
# PULUMI_CONFIG_PASSPHRASE_FILE / PULUMI_CONFIG_PASSPHRASE.
# The program and the policy pack run from venvs installed from the hashed locks, and every `up`
# runs the policy pack, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: scripts/deploy.sh <stack> [pulumi up flags]}
shift
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$HOME/.pulumi-harbor-cache}
case $PULUMI_BACKEND_URL in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac

create_flags=()
if grep -q '^secretsprovider:' "Pulumi.${stack}.yaml" 2>/dev/null; then
  : # the stack file names its key (and carries its encrypted data key)
elif [ -n "${PULUMI_SECRETS_PROVIDER:-}" ]; then
  create_flags=(--secrets-provider "$PULUMI_SECRETS_PROVIDER")
elif [ -n "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  create_flags=(--secrets-provider passphrase)
else
  echo "Pulumi.${stack}.yaml names no secrets provider: set PULUMI_SECRETS_PROVIDER" \
    "(e.g. awskms://alias/harbor-cache-${stack}?region=<region>, one key per stack) or" \
    "PULUMI_CONFIG_PASSPHRASE_FILE: it encrypts the stack's secrets in the state" >&2
  exit 2
fi

pip_flags=(install -q --disable-pip-version-check --require-hashes)
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/pip "${pip_flags[@]}" -r requirements.lock
[ -x policy/venv/bin/python ] || python3 -m venv policy/venv
policy/venv/bin/pip "${pip_flags[@]}" -r policy/requirements.lock

pulumi stack select --create "$stack" "${create_flags[@]}"
pulumi up --stack "$stack" --policy-pack policy "$@"
