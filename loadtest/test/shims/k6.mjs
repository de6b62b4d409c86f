// Shim of the `k6` module: check() evaluates its conditions and records each result with its tags.
export function check(value, sets, tags = {}) {
  let all = true;
  for (const [name, condition] of Object.entries(sets)) {
    const ok = Boolean(condition(value));
    globalThis.k6shim.checks.push({ name, ok, tags });
    all &&= ok;
  }
  return all;
}
