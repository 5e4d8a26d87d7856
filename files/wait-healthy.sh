#!/usr/bin/env bash
# Waits (bounded) until https://<host>/api/v2.0/health reports healthy over HTTPS with a
# certificate that verifies, asking Traefik on this machine under the public name. On timeout it
# fails with the last answer and the tail of the relevant container logs.
# Usage: wait-healthy.sh <hostname> [timeout seconds]; HEALTH_PORT and ACME_STAGING=1 (staging
# certificates do not verify) are optional. HEALTH_LOCAL_PORT (an HA node, which runs no Traefik):
# ask Harbor's nginx on 127.0.0.1:<port> over plain HTTP instead, as the load balancer does after
# ending TLS (Host: <hostname>, X-Forwarded-Proto: https).
set -euo pipefail

host=${1:?usage: wait-healthy.sh <hostname> [timeout seconds]}
timeout=${2:-900}
port=${HEALTH_PORT:-443}
interval=${HEALTH_INTERVAL:-10}
url="https://$host:$port/api/v2.0/health"
where="https://$host"
curl_args=(--silent --show-error --max-time 10 --resolve "$host:$port:127.0.0.1")
if [ -n "${HEALTH_LOCAL_PORT:-}" ]; then
  url="http://127.0.0.1:$HEALTH_LOCAL_PORT/api/v2.0/health"
  where="http://127.0.0.1:$HEALTH_LOCAL_PORT (this node's nginx, as $host)"
  curl_args=(--silent --show-error --max-time 10 --header "Host: $host" --header "X-Forwarded-Proto: https")
elif [ "${ACME_STAGING:-0}" = 1 ]; then
  curl_args+=(--insecure)
  echo "ACME staging: the certificate is not verified"
fi

deadline=$((SECONDS + timeout))
answer="(no answer yet)"
while true; do
  if answer=$(curl "${curl_args[@]}" "$url" 2>&1); then
    status=$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("status", ""))' <<<"$answer" 2>/dev/null || true)
    if [ "$status" = healthy ]; then
      echo "Harbor is healthy at $where"
      exit 0
    fi
  fi
  left=$((deadline - SECONDS))
  if [ "$left" -le 0 ]; then
    break
  fi
  echo "waiting for Harbor (${left}s left): ${answer:0:300}"
  sleep "$interval"
done

{
  echo "Harbor did not become healthy within ${timeout}s. Last answer from $url:"
  echo "$answer"
  for container in ${HEALTH_LOG_CONTAINERS:-traefik nginx harbor-core registry harbor-db}; do
    echo "--- docker logs --tail 40 $container"
    docker logs --tail 40 "$container" 2>&1 || true
  done
} >&2
exit 1
