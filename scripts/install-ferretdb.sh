#!/usr/bin/env bash
# Builds FerretDB 1.24 (the MongoDB-compatible server on SQLite used when no MONGODB_URI is set)
# once, from the Go module proxy, into the project's cache. Idempotent: does nothing when built.
set -euo pipefail
version=v1.24.2
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SECOND_OPINION_CACHE:-$root/.cache}
target=${FERRETDB_BIN:-$cache/ferretdb-$version/ferretdb}
if [ -x "$target" ]; then
  echo "FerretDB $version already built: $target"
  exit 0
fi
command -v go >/dev/null || { echo "Go is needed to build FerretDB $version: install Go 1.22 or later, or set MONGODB_URI" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
echo "[1/3] downloading the FerretDB $version module"
GOFLAGS=-modcacherw GOPATH="$work/gopath" go mod download -json "github.com/FerretDB/FerretDB@$version" > "$work/module.json"
src=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' "$work/module.json")
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
# A module download lacks the version file that `task build` writes; FerretDB refuses to start without it.
echo "$version" > "$work/src/build/version/version.txt"
echo "[2/3] compiling (about a minute on 2 cores)"
mkdir -p "$(dirname "$target")"
(cd "$work/src" && GOFLAGS=-modcacherw GOPATH="$work/gopath" go build -trimpath -o "$target.tmp" ./cmd/ferretdb)
mv "$target.tmp" "$target"
echo "[3/3] built $("$target" --version | head -1): $target"
