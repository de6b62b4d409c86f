// Shim of `k6/http`: request() records the call and returns what the test's responder answers.
function request(method, url, body, params = {}) {
  const call = { method, url, body, params };
  globalThis.k6shim.requests.push(call);
  return globalThis.k6shim.respond(call);
}

function expectedStatuses(...statuses) {
  return { expectedStatuses: statuses };
}

export default { request, expectedStatuses };
