#!/usr/bin/env bash
# Makes the service's keys as files, for Compose secrets or a Kubernetes Secret:
#   deploy/make-keys.sh deploy/compose/secrets
#   kubectl create secret generic second-opinion-keys --from-file=deploy/compose/secrets
# Keep them and back them up: tokens, opinion signatures and the ids of copied records depend on them.
# Files already there are kept.
set -euo pipefail
dir="${1:?usage: deploy/make-keys.sh <folder>}"
mkdir -p "$dir"
# The folder is private; the files are readable, because Compose mounts them into the container as
# they are and the service runs there as the unprivileged `node` user.
chmod 700 "$dir"
key() {
  local file="$dir/$1"
  shift
  if [ -s "$file" ]; then echo "kept $file"; return; fi
  "$@" > "$file"
  chmod 644 "$file"
  echo "made $file"
}
# ES384 for access tokens (AUTH_SIGNING_ALG) and ES256 for opinions (OPINION_SIGNING_ALG), the service's defaults.
key auth-signing-key.pem openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384
key opinion-signing-key.pem openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256
key record-id-key openssl rand -hex 32
# Signs the sign-in cookies of the workbench and the analytics page (SIGN_IN_COOKIE_KEY).
key sign-in-cookie-key openssl rand -hex 32
