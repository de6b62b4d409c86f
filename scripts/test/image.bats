#!/usr/bin/env bats
# The webapp image build (apps/webapp/Dockerfile) read as files: there is no Docker engine here. What is checked is
# what makes the build independent of the builder: BuildKit (docker buildx) reads apps/webapp/Dockerfile.dockerignore,
# Docker's legacy builder (a docker CLI without buildx) only the root .dockerignore and otherwise sends the whole
# repository, host build output (apps/webapp/dist/v1, dist/v2) and node_modules included.

setup() {
  load helpers
  DOCKERFILE="${REAL_ROOT}/apps/webapp/Dockerfile"
  IGNORE="${REAL_ROOT}/apps/webapp/Dockerfile.dockerignore"
  ROOT_IGNORE="${REAL_ROOT}/.dockerignore"
}

# patterns FILE: the patterns of an ignore file (comments and blank lines dropped).
patterns() { grep -vE '^[[:space:]]*(#|$)' "$1"; }

# context_copies: the sources of the Dockerfile's COPY instructions from the build context (not --from a stage),
# one a line, trailing slashes removed.
context_copies() {
  awk 'toupper($1) == "COPY" && $2 !~ /^--from=/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "${DOCKERFILE}" |
    sed 's|/$||'
}

@test "the root .dockerignore is identical to apps/webapp/Dockerfile.dockerignore (the legacy builder reads only the root one)" {
  [[ -f "${ROOT_IGNORE}" ]] || { echo "no .dockerignore at the repository root" >&2; false; }
  diff -u "${IGNORE}" "${ROOT_IGNORE}"
}

@test "the ignore file sends only sources: everything excluded first, no build output, node_modules or tests re-included" {
  [[ "$(patterns "${IGNORE}" | head -n 1)" == "*" ]]
  run bash -c "grep -vE '^[[:space:]]*(#|\$)' '${IGNORE}' | grep -E 'dist|node_modules|(^|/)test|\\.git'"
  assert_status 1
}

@test "every file the Dockerfile copies from the context is one the ignore file sends" {
  # A source is sent when the ignore file re-includes it, a directory above it, or (a directory copied whole)
  # files below it.
  local src p sent missing=""
  while read -r src; do
    sent=0
    while read -r p; do
      p="${p#!}"
      if [[ "${src}" == "${p}" || "${src}" == "${p}/"* || "${p}" == "${src}/"* ]]; then sent=1; fi
    done < <(patterns "${IGNORE}" | grep '^!')
    ((sent == 1)) || missing+=" ${src}"
  done < <(context_copies)
  [[ -z "${missing}" ]] || { echo "copied but not sent by the ignore file:${missing}" >&2; false; }
}

@test "the build copies the webapp's sources by name, never its whole directory (host dist/ and node_modules/ stay out)" {
  run context_copies
  assert_status 0
  [[ -n "${output}" ]]
  run grep -xE 'apps/webapp|apps/webapp/(dist|node_modules)(/.*)?' <<<"${output}"
  assert_status 1
}

@test "the bundle is written into a fresh directory that nothing is copied into, and the runtime image takes it from there" {
  # the build stage bundles into /out and checks that only its two files are there
  grep -qE 'node build\.mjs .*--outdir /out( |$)' "${DOCKERFILE}"
  # shellcheck disable=SC2016 # the Dockerfile's text, not an expansion
  grep -qF '"$(ls -A /out)" != "$(printf '"'"'main.js\npackage.json'"'"')"' "${DOCKERFILE}"
  # no COPY writes into /out, and the runtime stage copies exactly it
  run awk 'toupper($1) == "COPY" && $NF ~ /^\/out/' "${DOCKERFILE}"
  [[ -z "${output}" ]]
  grep -qxF 'COPY --from=build /out/ ./dist/' "${DOCKERFILE}"
}
