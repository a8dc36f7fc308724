#!/usr/bin/env bash
# Sourced by .ci/run: make `node` the Node.js release .nvmrc names (the runtime of the service images),
# so CI tests what production runs whatever Node the machine has.
#
# The machine's node is kept when it is that release. Otherwise the official Linux build of the release is
# taken from the npm registry (package node-linux-<arch>, the `node` package's per-platform binary; npm
# checks its integrity) into a cache folder, and put first on PATH. The machines this runs on reach the
# npm registry and nothing else.

# use_project_node REPO_DIR: exports PATH with the right node first; fails naming what is wrong.
use_project_node() {
  local repo=$1 version arch cache dir tmp
  version=$(tr -d ' \r\nv' <"$repo/.nvmrc")
  if [[ ! $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "ci: .nvmrc must name an exact Node.js release (such as 24.22.3), not '$version'" >&2
    return 1
  fi
  if [[ "$(node --version 2>/dev/null)" == "v$version" ]]; then return 0; fi

  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "ci: no Node.js $version build for $(uname -m) in the npm registry" >&2; return 1 ;;
  esac
  cache="${TITANIUM_NODE_CACHE:-${XDG_CACHE_HOME:-${HOME:-$repo}/.cache}/titanium}"
  dir="$cache/node-v$version-linux-$arch"
  # A cached release counts only if it runs and is that release (a killed run or a bad download is replaced).
  if [[ "$("$dir/bin/node" --version 2>/dev/null)" != "v$version" ]]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "ci: Node.js $version is needed and there is no npm to fetch it with (the machine's node: $(node --version 2>/dev/null || echo none))" >&2
      return 1
    fi
    echo "ci: the machine has node $(node --version 2>/dev/null || echo none); fetching Node.js $version (node-linux-$arch)"
    mkdir -p "$cache"
    # Unpacked beside its final place, then renamed: the cache never holds half a release.
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    if ! (cd "$tmp" && npm pack --loglevel=error --pack-destination . "node-linux-$arch@$version" >/dev/null && tar -xzf ./*.tgz); then
      rm -rf "$tmp"
      echo "ci: could not fetch node-linux-$arch@$version from the npm registry (npm's message above)" >&2
      return 1
    fi
    rm -rf "$dir"
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
  if [[ "$(node --version)" != "v$version" ]]; then
    echo "ci: $dir/bin/node is $(node --version), not v$version" >&2
    return 1
  fi
}
