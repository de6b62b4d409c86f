# shellcheck shell=bash
# JUnit recording for the test scripts (test-chart.sh, test-istio.sh, test-scripts.sh, test.sh): one testcase per
# check, one printed line per check, and one XML file per suite that hack/test-summary.mjs adds up.
#
#   source hack/junit.sh
#   junit_init chart                                      # suite name, also the classname prefix
#   junit_record CLASS NAME SECONDS ok|fail DETAIL_FILE SUMMARY
#   junit_write "${TEST_RESULTS_DIR}/chart.xml"
#   ((JUNIT_FAILED == 0))

JUNIT_SUITE=""
JUNIT_CASES=""
JUNIT_PASSED=0
JUNIT_FAILED=0

xml_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }

junit_init() {
  JUNIT_SUITE="$1"
  JUNIT_CASES=""
  JUNIT_PASSED=0
  JUNIT_FAILED=0
}

# junit_record CLASS NAME SECONDS STATUS DETAIL_FILE SUMMARY: a failed check prints the tail of DETAIL_FILE and
# carries it in the XML.
junit_record() {
  local class="$1" name="$2" seconds="$3" status="$4" detail="$5" summary="$6"
  local ename
  ename="$(printf '%s' "${name}" | xml_escape)"
  if [[ "${status}" == ok ]]; then
    JUNIT_PASSED=$((JUNIT_PASSED + 1))
    printf '  ok    %-11s %s%s\n' "${class}" "${name}" "${summary:+  (${summary})}"
    JUNIT_CASES+="<testcase classname=\"${JUNIT_SUITE}.${class}\" name=\"${ename}\" time=\"${seconds}\"/>"$'\n'
  else
    JUNIT_FAILED=$((JUNIT_FAILED + 1))
    printf '  FAIL  %-11s %s%s\n' "${class}" "${name}" "${summary:+  (${summary})}"
    [[ -f "${detail}" ]] && sed -e 's/^/        | /' "${detail}" | tail -n 30
    local emsg body=""
    emsg="$(printf '%s' "${summary}" | xml_escape)"
    [[ -f "${detail}" ]] && body="$(tail -n 60 "${detail}" | xml_escape)"
    JUNIT_CASES+="<testcase classname=\"${JUNIT_SUITE}.${class}\" name=\"${ename}\" time=\"${seconds}\"><failure message=\"${emsg}\">${body}</failure></testcase>"$'\n'
  fi
}

# junit_write FILE
junit_write() {
  mkdir -p "$(dirname "$1")"
  {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n'
    printf '<testsuites><testsuite name="%s" tests="%s" failures="%s">\n' \
      "${JUNIT_SUITE}" "$((JUNIT_PASSED + JUNIT_FAILED))" "${JUNIT_FAILED}"
    printf '%s' "${JUNIT_CASES}"
    printf '</testsuite></testsuites>\n'
  } >"$1"
}
