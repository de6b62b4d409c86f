/** A field-by-field difference between two JSON values, and how it is printed. */

export interface Difference {
  /** Where: a JSON path (`virtualHosts[0].routes[1].match.caseSensitive`) or what was compared. */
  what: string;
  ours: unknown;
  istio: unknown;
}

const ABSENT = Symbol('absent');

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every leaf where `ours` and `istio` differ (object keys in any order; arrays index by index). */
export function diffValues(ours: unknown, istio: unknown, path = ''): Difference[] {
  if (Array.isArray(ours) && Array.isArray(istio)) {
    const out: Difference[] = [];
    for (let i = 0; i < Math.max(ours.length, istio.length); i++) {
      out.push(
        ...diffValues(
          i < ours.length ? ours[i] : ABSENT,
          i < istio.length ? istio[i] : ABSENT,
          `${path}[${i}]`,
        ),
      );
    }
    return out;
  }
  if (isObj(ours) && isObj(istio)) {
    const out: Difference[] = [];
    const keys = [...new Set([...Object.keys(ours), ...Object.keys(istio)])];
    for (const k of keys) {
      out.push(
        ...diffValues(
          k in ours ? ours[k] : ABSENT,
          k in istio ? istio[k] : ABSENT,
          path === '' ? k : `${path}.${k}`,
        ),
      );
    }
    return out;
  }
  if (ours === istio) return [];
  return [{ what: path === '' ? '(value)' : path, ours: show(ours), istio: show(istio) }];
}

function show(v: unknown): unknown {
  return v === ABSENT ? '(absent)' : v;
}

function printValue(v: unknown): string {
  if (v === '(absent)') return '(absent)';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 400 ? `${s.slice(0, 400)}…` : s;
}

/** Differences as indented lines: the path, then our value and Istio's. */
export function formatDifferences(diffs: readonly Difference[], indent = '  '): string {
  return diffs
    .map(
      (d) =>
        `${indent}${d.what}\n${indent}  ours:  ${printValue(d.ours)}\n${indent}  istio: ${printValue(d.istio)}`,
    )
    .join('\n');
}
