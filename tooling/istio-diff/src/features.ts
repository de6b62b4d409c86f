/**
 * What a VirtualService uses, as short labels: the report counts them over the cases compared in full, so a run
 * shows that the generated cases reach what the comparison is meant to cover.
 */
type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function hostKind(h: string): string {
  if (h === '*') return 'host *';
  if (h.startsWith('*.')) return 'host *.suffix';
  if (h === 'localhost') return 'host localhost';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return 'host IPv4';
  if (h.includes(':')) return 'host IPv6';
  if (!h.includes('.')) return 'host short name';
  return /[A-Z]/.test(h) ? 'host FQDN with upper case' : 'host FQDN';
}

function stringMatchKind(m: unknown): string {
  if (!isObj(m)) return 'null';
  const k = Object.keys(m)[0];
  return k === undefined ? 'present' : k;
}

const RE2_ONLY: [RegExp, string][] = [
  [/\[\[:/, 'regex [[:class:]]'],
  [/\\p/, 'regex \\pL'],
  [/\(\?P</, 'regex (?P<name>)'],
  [/\(\?</, 'regex (?<name>)'],
  [/\\Q/, 'regex \\Q…\\E'],
  [/\(\?i\)/, 'regex (?i)'],
];

export function features(vs: unknown): string[] {
  const out = new Set<string>();
  const spec = isObj(vs) && isObj(vs.spec) ? vs.spec : {};
  for (const h of (spec.hosts as string[] | undefined) ?? []) out.add(hostKind(h));
  const gateways = spec.gateways as string[] | undefined;
  const mesh = gateways === undefined || gateways.length === 0 || gateways.includes('mesh');
  const gateway = (gateways ?? []).some((g) => g !== 'mesh');
  out.add(mesh && gateway ? 'gateways: gateway + mesh' : mesh ? 'gateways: mesh only' : 'gateways: gateway');
  if (spec.exportTo !== undefined) out.add('exportTo');
  const http = (spec.http as Obj[] | undefined) ?? [];
  out.add(`${http.length} http route(s)`);
  for (const route of http) {
    const matches = (route.match as Obj[] | undefined) ?? [];
    out.add(`${matches.length} match block(s)`);
    for (const m of matches) {
      if (m.name !== undefined) out.add('match name');
      if (m.uri !== undefined) out.add(`uri ${stringMatchKind(m.uri)}`);
      if (m.method !== undefined) out.add(`method ${stringMatchKind(m.method)}`);
      if (m.ignoreUriCase === true) out.add('ignoreUriCase');
      for (const key of ['headers', 'withoutHeaders']) {
        for (const [name, sm] of Object.entries(isObj(m[key]) ? (m[key] as Obj) : {})) {
          out.add(`${key} ${stringMatchKind(sm)}`);
          if (/[A-Z]/.test(name)) out.add(`${key} name with upper case`);
        }
      }
      for (const v of JSON.stringify(m).matchAll(/"regex":"((?:[^"\\]|\\.)*)"/g)) {
        const re = JSON.parse(`"${v[1]}"`) as string;
        for (const [pattern, label] of RE2_ONLY) if (pattern.test(re)) out.add(label);
      }
    }
    const dests = (route.route as Obj[] | undefined) ?? [];
    out.add(`${dests.length} destination(s)`);
    const weights = dests.map((d) => (typeof d.weight === 'number' ? d.weight : 0));
    if (dests.length > 1) {
      if (weights.includes(0)) out.add('a weight of 0');
      if (weights.reduce((a, b) => a + b, 0) !== 100) out.add('weights not adding up to 100');
    }
    for (const d of dests) {
      const dest = isObj(d.destination) ? d.destination : {};
      if (dest.subset === undefined) out.add('destination without subset');
      else if (!['v1', 'v2', 'green', 'blue'].includes(String(dest.subset)))
        out.add('subset the DestinationRule lacks');
      if (isObj(dest.port) && dest.port.number !== 80) out.add('destination port the Service lacks');
      if (dest.host === 'webapp') out.add('destination short host');
    }
    const response = isObj(route.headers) && isObj(route.headers.response) ? route.headers.response : {};
    for (const op of ['set', 'add', 'remove'])
      if (response[op] !== undefined) out.add(`response header ${op}`);
    if (route.timeout !== undefined) out.add('timeout');
    if (route.retries !== undefined) out.add('retries');
  }
  return [...out];
}
