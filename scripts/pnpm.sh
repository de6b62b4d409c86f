#!/usr/bin/env bash
# Runs pnpm at the version pinned in package.json ("packageManager"). A fresh machine needs only Node and npm:
# when the pnpm on PATH is missing or another version, the pinned one is installed once into .cache/ (git-ignored).
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want="$(node -p 'require(process.argv[1]).packageManager.split("@")[1]' "${REPO_ROOT}/package.json")"

if command -v pnpm >/dev/null 2>&1 && [[ "$(pnpm --version 2>/dev/null)" == "${want}" ]]; then
  exec pnpm "$@"
fi

prefix="${REPO_ROOT}/.cache/pnpm/${want}"
if [[ ! -x "${prefix}/node_modules/.bin/pnpm" ]]; then
  echo ">>> installing pnpm ${want} into .cache/pnpm/${want}" >&2
  npm install --silent --no-audit --no-fund --prefix "${prefix}" "pnpm@${want}" >&2
fi
exec "${prefix}/node_modules/.bin/pnpm" "$@"
