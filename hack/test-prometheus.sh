#!/usr/bin/env bash
# The three-way check of `make test` (suite `prometheus`): a real Prometheus (Debian's package, installed by
# hack/ci-tools.sh debian) scrapes the local gateway and both apps while the demo walks every stage, and after
# every step the PromQL the cluster path uses (packages/split-check/src/promql.ts) is run against its HTTP API: per
# version, the verifier's own counts, the gateway's istio_requests_total (and the +Inf bucket of its
# istio_request_duration_milliseconds) and the apps' http_requests_total must agree request for request.
#
# Runs `rollout demo` twice, healthy and SCENARIO=bad-v2 (v2 answers 500s: they are counted too), with
# ROLLOUT_PROMETHEUS=required (no Prometheus is a failure, not a skip), on free ports and a state directory of its
# own; each step's comparison is one JUnit testcase (${TEST_RESULTS_DIR}/prometheus.xml). Needs `make build`.
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
RESULTS="${TEST_RESULTS_DIR:-${REPO_ROOT}/.test-results}"
SUFFIX="${TEST_RESULTS_SUFFIX:-}"
CLI=packages/cli/dist/main.js

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# shellcheck source=hack/junit.sh
source "${REPO_ROOT}/hack/junit.sh"

WORK=""
cleanup() { [[ -z "${WORK}" ]] || rm -rf "${WORK}"; }
trap cleanup EXIT

# free_ports N: N loopback ports nothing listens on, from local-mesh's findFreePort (no port picked in advance).
free_ports() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node --input-type=module -e '
    const { findFreePort } = await import(process.argv[1]);
    const ports = new Set();
    while (ports.size < Number(process.argv[2])) ports.add(await findFreePort());
    console.log([...ports].join(" "));
  ' "file://${REPO_ROOT}/packages/local-mesh/dist/index.js" "$1"
}

# record_rows SUMMARY RUN: one testcase per step of the summary's threeWay, its counts in the name.
record_rows() {
  local summary="$1" run="$2" line status name
  # shellcheck disable=SC2016 # JavaScript, not shell
  while IFS=$'\t' read -r status name; do
    printf '%s\n' "${name}" >"${WORK}/detail"
    junit_record "${run}" "${name}" 0 "${status}" "${WORK}/detail" ""
  done < <(node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (!s.threeWay || !s.threeWay.prometheus) { console.log(`fail\tno three-way check ran: ${JSON.stringify(s.threeWay)}`); process.exit(0); }
    for (const r of s.threeWay.steps) {
      const parts = Object.entries(r.versions).map(([v, c]) => `${v} ${c.verifier}/${c.gateway}/${c.histogram}/${c.app}`);
      console.log(`${r.agree ? "ok" : "fail"}\t${r.step}: verifier/gateway/histogram/apps ${parts.join(", ")}`);
    }
  ' "${summary}")
  line="$(node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(s.threeWay && s.threeWay.steps ? s.threeWay.steps.length : 0)' "${summary}")"
  ((line > 0)) || junit_record "${run}" "the summary lists three-way steps" 0 fail "${WORK}/detail" "none"
}

# run_demo NAME [DEMO ARGS...]: the demo with Prometheus required; its exit code is checked by the caller.
run_demo() {
  local name="$1" ports state
  shift
  read -r -a ports <<<"$(free_ports 4)"
  state="${WORK}/${name}"
  mkdir -p "${state}"
  printf '>>> rollout demo %s (three-way check, ports %s)\n' "$*" "${ports[*]}"
  local rc=0 start=${SECONDS}
  ROLLOUT_PROMETHEUS=required ROLLOUT_STATE_DIR="${state}" GATEWAY_PORT="${ports[0]}" ADMIN_PORT="${ports[1]}" \
    V1_PORT="${ports[2]}" V2_PORT="${ports[3]}" node "${CLI}" demo "$@" >"${WORK}/${name}.log" 2>&1 || rc=$?
  grep -E 'Prometheus|three-way' "${WORK}/${name}.log" | sed -e 's/^/    /' || true
  DEMO_RC=${rc}
  DEMO_SECONDS=$((SECONDS - start))
  DEMO_SUMMARY="${state}/demo-summary.json"
}

# negative_case: the local path and the three-way check of the CLI (local-prometheus.js), fed one request straight
# to v2 and one through the gateway, while the verifier's counts say none: both steps must disagree.
negative_case() {
  local ports
  read -r -a ports <<<"$(free_ports 4)"
  # shellcheck disable=SC2016 # JavaScript, not shell
  node --input-type=module -e '
    const [root, g, a, v1, v2] = process.argv.slice(1);
    const mesh = await import(`file://${root}/packages/local-mesh/dist/index.js`);
    const { LocalPrometheus, formatThreeWay, prometheusBinary } = await import(`file://${root}/packages/cli/dist/local-prometheus.js`);
    const m = await mesh.startLocalMesh({ root, ports: { gateway: +g, admin: +a, versions: { v1: +v1, v2: +v2 } } });
    const p = await LocalPrometheus.start({ bin: prometheusBinary().bin, gatewayMetrics: `${m.adminUrl}/metrics`, apps: m.workloads.map((w) => w.url) });
    let failed = 0;
    try {
      await p.begin();
      await (await fetch(`${m.workloads.find((w) => w.version === "v2").url}/`)).text();
      const direct = await p.step("a request straight to v2", { v1: 0, v2: 0 });
      console.log(`straight to v2: ${formatThreeWay(direct)}`);
      if (direct.agree || direct.versions.v2.app !== 1 || direct.versions.v2.gateway !== 0) failed++;
      const res = await fetch(`${m.gatewayUrl}/`);
      const version = res.headers.get("x-app-version");
      await res.text();
      const through = await p.step("a request the verifier did not count", {});
      console.log(`through the gateway (${version}): ${formatThreeWay(through)}`);
      if (through.agree || through.versions[version].gateway !== 1 || through.versions[version].app !== 1) failed++;
    } finally {
      await p.stop();
      await m.stop();
    }
    process.exit(failed === 0 ? 0 : 1);
  ' "${REPO_ROOT}" "${ports[@]}"
}

main() {
  "${REPO_ROOT}/hack/ci-tools.sh" debian
  command -v prometheus >/dev/null || die "prometheus not found after hack/ci-tools.sh debian"
  [[ -f "${CLI}" && -f packages/local-mesh/dist/index.js ]] || die "the three-way check needs the workspace built: run 'make build'"
  mkdir -p "${RESULTS}"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/rollouts-prometheus.XXXXXX")"
  junit_init prometheus

  run_demo healthy
  if ((DEMO_RC == 0)); then
    junit_record demo "healthy demo passes with the three-way check" "${DEMO_SECONDS}" ok "${WORK}/healthy.log" ""
  else
    junit_record demo "healthy demo passes with the three-way check" "${DEMO_SECONDS}" fail "${WORK}/healthy.log" "exit ${DEMO_RC}"
  fi
  [[ -f "${DEMO_SUMMARY}" ]] && record_rows "${DEMO_SUMMARY}" healthy

  run_demo bad-v2 --scenario bad-v2
  # The analysis rolls back at canary-10 (exit 1); every step, its 5xx included, is still counted alike.
  if ((DEMO_RC == 1)) && grep -q 'rolled back to stable' "${WORK}/bad-v2.log"; then
    junit_record demo "bad-v2 demo rolls back at canary-10, counted alike" "${DEMO_SECONDS}" ok "${WORK}/bad-v2.log" ""
  else
    junit_record demo "bad-v2 demo rolls back at canary-10, counted alike" "${DEMO_SECONDS}" fail "${WORK}/bad-v2.log" "exit ${DEMO_RC}"
  fi
  [[ -f "${DEMO_SUMMARY}" ]] && record_rows "${DEMO_SUMMARY}" bad-v2

  # The check can fail: a request that reaches an app behind the verifier's back (straight to v2, not through
  # the gateway) and one through the gateway that the verifier did not send must both be seen as disagreements.
  local rc=0 start=${SECONDS}
  negative_case >"${WORK}/negative.log" 2>&1 || rc=$?
  sed -e 's/^/    /' "${WORK}/negative.log"
  if ((rc == 0)); then
    junit_record negative "requests the verifier did not send make the three-way check disagree" "$((SECONDS - start))" ok "${WORK}/negative.log" ""
  else
    junit_record negative "requests the verifier did not send make the three-way check disagree" "$((SECONDS - start))" fail "${WORK}/negative.log" "exit ${rc}"
  fi

  junit_write "${RESULTS}/prometheus${SUFFIX}.xml"
  printf 'prometheus: %s passed, %s failed\n' "${JUNIT_PASSED}" "${JUNIT_FAILED}"
  ((JUNIT_FAILED == 0))
}

main "$@"
