#!/usr/bin/env bash
# Builds SecantusDB (crates.io `secantus-mdb`, binary `secantusd-rs`: the embedded database used when no
# MONGODB_URI is set) once, into a cache shared by every checkout on the machine. Idempotent: does
# nothing when built. Needs cargo, cmake and a C compiler (it compiles WiredTiger from bundled source).
set -euo pipefail
version=0.5.3-beta.196 # keep in step with secantusVersion in src/database/local-server.ts
cache=${SECOND_OPINION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/second-opinion}
root=$cache/secantus-mdb-$version
target=${SECANTUSD_BIN:-$root/bin/secantusd-rs}
if [ -x "$target" ]; then
  echo "SecantusDB $version already built: $target"
  exit 0
fi
missing=()
for tool in cargo cmake cc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "SecantusDB $version is built from source and needs: ${missing[*]} (Rust from rustup; apt-get install cmake build-essential), or set MONGODB_URI" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "[1/2] compiling secantus-mdb $version with $(cargo --version) (WiredTiger included: about 10 minutes on 2 cores, once)"
# The crate asks for a newer Rust than some machines carry; it builds with 1.95, and the test suite runs on what it builds.
if ! CARGO_TARGET_DIR="$work/target" cargo install secantus-mdb --version "$version" --locked --ignore-rust-version --root "$work/root" 2>&1 |
  tee "$work/build.log" | grep --line-buffered -E '^ *(Compiling|Finished|Installed)' | awk '{ n++; printf "  [%3d] %s\n", n, $0; fflush() }'; then
  echo "the build failed; its last lines:" >&2
  tail -40 "$work/build.log" >&2
  exit 1
fi
[ -x "$work/root/bin/secantusd-rs" ] || { echo "the build did not produce secantusd-rs" >&2; exit 1; }
mkdir -p "$(dirname "$target")"
mv "$work/root/bin/secantusd-rs" "$target.tmp"
mv "$target.tmp" "$target"
echo "[2/2] built $("$target" --version 2>&1 | head -1): $target"
