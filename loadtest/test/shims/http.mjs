// Shim of `k6/http`: request() records the call and returns what the test's responder answers.
function request(method, url, body, params = {}) {
  const call = { method, url, body, params };
  globalThis.k6shim.requests.push(call);
  const res = globalThis.k6shim.respond(call);
  // k6 measures every request; a responder may give the duration (ms), else 1 ms.
  return { timings: { duration: 1 }, ...res };
}

function expectedStatuses(...statuses) {
  return { expectedStatuses: statuses };
}

export default { request, expectedStatuses };
