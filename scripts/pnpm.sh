#!/usr/bin/env bash
# Runs pnpm at the version pinned in package.json ("packageManager"). A fresh machine needs only Node and npm:
# when the pnpm on PATH is missing or another version, the pinned one is installed once into .cache/ (git-ignored).
# Its directory goes first on PATH for everything pnpm starts, so turbo, which runs each package's task with the
# `pnpm` it finds on PATH, gets the pinned one too (never a missing or an older/newer global pnpm).
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want="$(node -p 'require(process.argv[1]).packageManager.split("@")[1]' "${REPO_ROOT}/package.json")"

if command -v pnpm >/dev/null 2>&1 && [[ "$(pnpm --version 2>/dev/null)" == "${want}" ]]; then
  exec pnpm "$@"
fi

prefix="${REPO_ROOT}/.cache/pnpm/${want}"
bindir="${prefix}/node_modules/.bin"
if [[ ! -x "${bindir}/pnpm" ]]; then
  echo ">>> installing pnpm ${want} into .cache/pnpm/${want}" >&2
  rm -rf "${prefix}.tmp"
  npm install --silent --no-audit --no-fund --prefix "${prefix}.tmp" "pnpm@${want}" >&2
  rm -rf "${prefix}" && mv "${prefix}.tmp" "${prefix}"
fi
export PATH="${bindir}:${PATH}"
exec "${bindir}/pnpm" "$@"
