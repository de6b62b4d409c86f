#!/usr/bin/env bash
# `make dashboards`: install Istio's Prometheus and Kiali addons (samples/addons of the ISTIO_VERSION release) and
# port-forward them: Kiali http://localhost:20001, Prometheus http://localhost:9090. Ctrl-C stops the forwards
# (the addons stay installed; `make down` removes everything). Both forwards end with the script, however it ends:
# Ctrl-C, SIGTERM or SIGHUP, one forward failing (the other is stopped), or an error.
#
# Knobs: KIALI_PORT (20001), PROMETHEUS_PORT (9090), DASHBOARDS_TIMEOUT seconds for the addons to start (300).
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KIALI_PORT="${KIALI_PORT:-20001}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
DASHBOARDS_TIMEOUT="${DASHBOARDS_TIMEOUT:-300}"
ADDONS_URL="https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons"
ADDONS=(prometheus kiali)

apply_addons() {
  local a
  for a in "${ADDONS[@]}"; do
    # Retried: the API server may need a moment for CRDs an addon brings.
    retry 3 kube apply -f "${ADDONS_URL}/${a}.yaml"
  done
  STEP_RESULT="${ADDONS[*]} from Istio ${ISTIO_VERSION}"
}

wait_addons() {
  local a
  for a in "${ADDONS[@]}"; do
    if ! kube -n "${ISTIO_NAMESPACE}" rollout status "deployment/${a}" --timeout="${DASHBOARDS_TIMEOUT}s"; then
      kube -n "${ISTIO_NAMESPACE}" get pods -o wide >&2 || true
      die "deployment/${a} in ${ISTIO_NAMESPACE} not ready after ${DASHBOARDS_TIMEOUT}s"
    fi
  done
  STEP_RESULT="ready"
}

FORWARDS=()

# forward SERVICE LOCAL:REMOTE: a port-forward, meant to run in the background. `exec` makes the background
# subshell become kubectl, so $! is kubectl's own pid: without it $! is the subshell's, and killing the subshell
# leaves kubectl running, re-parented, holding its port.
forward() {
  exec kubectl --context "${KUBE_CONTEXT}" -n "${ISTIO_NAMESPACE}" port-forward "$1" "$2" >/dev/null
}

# stop_forwards: every port-forward started is stopped and reaped (run by the EXIT trap of lib.sh).
stop_forwards() {
  local pid
  for pid in ${FORWARDS[@]+"${FORWARDS[@]}"}; do
    kill "${pid}" 2>/dev/null || true
  done
  for pid in ${FORWARDS[@]+"${FORWARDS[@]}"}; do
    wait "${pid}" 2>/dev/null || true
  done
}

# on_signal CODE: Ctrl-C ends the session normally (exit 0), SIGTERM and SIGHUP with 128 + their number; the EXIT
# trap then stops the forwards.
on_signal() {
  trap '' INT TERM HUP # a second Ctrl-C while the forwards are being stopped changes nothing
  log ""
  log "stopping the port-forwards"
  exit "$1"
}

main() {
  (($# == 0)) || die_usage "usage: scripts/dashboards.sh"
  require_tools kubectl
  require_cluster
  step "Istio addons (${ADDONS_URL})" apply_addons
  step "wait for the addons" wait_addons

  # Cleanup and traps before the first forward starts: whatever ends the script from here stops what was started.
  add_cleanup stop_forwards
  trap 'on_signal 0' INT
  trap 'on_signal 143' TERM
  trap 'on_signal 129' HUP
  forward svc/kiali "${KIALI_PORT}:20001" &
  local kiali=$!
  FORWARDS+=("${kiali}")
  forward svc/prometheus "${PROMETHEUS_PORT}:9090" &
  local prometheus=$!
  FORWARDS+=("${prometheus}")

  log "Kiali:      http://localhost:${KIALI_PORT}   (graph: namespace ${NAMESPACE}, display 'Traffic Distribution')"
  log "Prometheus: http://localhost:${PROMETHEUS_PORT}   (e.g. istio_requests_total{destination_workload_namespace=\"${NAMESPACE}\"})"
  log "send traffic in another terminal: make verify. Ctrl-C stops."
  # Poll both forwards (bash 3.2 has no `wait -n`): one dying (port taken, pod restarted) ends the session.
  while kill -0 "${kiali}" 2>/dev/null && kill -0 "${prometheus}" 2>/dev/null; do
    sleep 1
  done
  log "error: a port-forward stopped (is port ${KIALI_PORT} or ${PROMETHEUS_PORT} taken?); run 'make dashboards' again"
  return 1
}

main "$@"
