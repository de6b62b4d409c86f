#!/usr/bin/env bash
# A demo release fault on the cluster path: the app's fault knobs on the new version only, through the chart values.
#
#   scripts/scenario.sh [NAME]           helm upgrade of release webapp with the scenario's values (none: healthy)
#   scripts/scenario.sh --print [NAME]   only print them, one `key=value` a line (make up passes them to helm)
#
# The scenarios are defined once, in packages/cli/src/scenarios.ts (bad-v2, slow-v2; `none` or empty: a healthy
# release): the values are derived from them by its helmSetValues (every knob any scenario sets, per version, with
# this scenario's value or "0", the app's "off"), so a healthy release resets an earlier fault. An unknown name
# exits 2 with the list. `make progress TARGET=cluster SCENARIO=...` runs it before walking the stages.
#
# Knobs: SCENARIO (when no NAME is given), UP_TIMEOUT seconds for the pods (300).
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


# scenario_values NAME: the `key=value` lines of the scenario (exit 2 for an unknown one, the CLI's message).
scenario_values() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node_module packages/cli/dist/scenarios.js "it defines the scenarios" '
    const [dist, name] = process.argv.slice(1);
    const { resolveScenario, helmSetValues } = await import(dist);
    try {
      for (const line of helmSetValues(resolveScenario(name, {}))) console.log(line);
    } catch (error) {
      console.error(`error: ${error.message}`);
      process.exit(error.name === "UsageError" ? 2 : 1);
    }
  ' "$1"
}

main() {
  local print=0
  if [[ "${1:-}" == --print ]]; then
    print=1
    shift
  fi
  (($# <= 1)) || die_usage "usage: scripts/scenario.sh [--print] [bad-v2|slow-v2|none]"
  local name="${1:-${SCENARIO:-}}" values rc=0
  values="$(scenario_values "${name}")" || rc=$?
  ((rc == 0)) || exit "${rc}"
  if ((print == 1)); then
    printf '%s\n' "${values}"
    return 0
  fi

  require_tools kubectl helm
  require_helm_major
  require_cluster
  helm_kube status "${RELEASE}" -n "${NAMESPACE}" >/dev/null 2>&1 ||
    die "release ${RELEASE} is not installed in ${KUBE_CONTEXT} (namespace ${NAMESPACE}): run 'make up' first"
  local args=() line
  while IFS= read -r line; do
    [[ -z "${line}" ]] || args+=(--set-string "${line}")
  done <<<"${values}"
  log ">>> scenario ${name:-none} on release webapp: ${values//$'\n'/, }"
  local start=${SECONDS}
  # The flags of make up's install (scripts/cluster-up.sh): server-side apply, the chart wins conflicts, and wait
  # until every resource is ready (pods whose env changed are replaced).
  if ! helm_kube upgrade "${RELEASE}" "${CHART}" -n "${NAMESPACE}" --server-side=true --force-conflicts \
    --wait=watcher --timeout "${UP_TIMEOUT}s" ${args[@]+"${args[@]}"}; then
    kube -n "${NAMESPACE}" get pods -o wide >&2 || true
    die "the chart with scenario ${name:-none} did not become ready"
  fi
  log "<<< scenario ${name:-none}: release ${RELEASE} upgraded ($((SECONDS - start))s)"
}

main "$@"
