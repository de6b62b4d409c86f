/**
 * Host names as Istio reads them and as Envoy matches them at the ingress gateway.
 *
 * - Istio resolves every VirtualService host (and destination host) that has no dot and is not an IP address to
 *   `<name>.<namespace>.svc.cluster.local` (pilot/pkg/model/config.go ResolveShortnameToFQDN): `localhost` in a
 *   VirtualService of namespace `rollouts` is `localhost.rollouts.svc.cluster.local`, not the name curl sends.
 *   `*` and names with a dot (`*.example.com` too) are kept.
 * - The gateway's virtual hosts get the intersection of the Gateway server's hosts and the VirtualService's hosts
 *   as domains, lower-cased (pilot/pkg/networking/core/gateway.go).
 * - Envoy picks the virtual host for a request by its Host (`:authority`), lower-cased, the port ignored (Istio sets
 *   `ignore_port_in_host_matching`): an exact domain first, then the longest suffix wildcard (`*.example.com`,
 *   at least one character before the suffix), then the longest prefix wildcard (`example.*`), then `*`.
 */

export const CLUSTER_DOMAIN = 'cluster.local';

/** Go's net.ParseIP: a dotted IPv4 address or an IPv6 address (without brackets or zone). */
export function isIpAddress(s: string): boolean {
  if (/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(s)) return true;
  if (!s.includes(':') || !/^[0-9a-fA-F:.]+$/.test(s)) return false;
  const [head, tail, ...more] = s.split('::');
  if (more.length > 0) return false;
  const groups = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':'));
  const all = [...groups(head), ...groups(tail)];
  let count = 0;
  for (const [i, g] of all.entries()) {
    if (i === all.length - 1 && g.includes('.')) {
      if (!isIpAddress(g) || g.includes(':')) return false;
      count += 2;
    } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) count += 1;
    else return false;
  }
  return tail === undefined ? count === 8 : count < 8;
}

/** Istio's ResolveShortnameToFQDN with the Kubernetes domain `cluster.local`. */
export function resolveShortname(host: string, namespace: string | undefined): string {
  if (host === '*' || isIpAddress(host) || host.includes('.')) return host;
  let out = host;
  if (namespace) out += `.${namespace}`;
  return `${out}.svc.${CLUSTER_DOMAIN}`;
}

/** Istio's host.Name.SubsetOf: `a` is covered by `b` (both may be wildcards `*` or `*.suffix`). */
export function hostSubsetOf(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw) return bw && a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Istio's host.Name.Matches: either covers the other (used for "duplicate hosts" in validation). */
export function hostsOverlap(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw && bw)
    return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Istio's host.Names.Intersection(serverHosts, virtualServiceHosts), in its order. */
export function intersectHosts(serverHosts: readonly string[], vsHosts: readonly string[]): string[] {
  const out: string[] = [];
  for (const h of serverHosts) {
    for (const o of vsHosts) {
      const pick = hostSubsetOf(h, o) ? h : hostSubsetOf(o, h) ? o : null;
      if (pick !== null && !out.includes(pick)) out.push(pick);
    }
  }
  return out;
}

/** Envoy's HeaderUtility::getPortStart: where `:port` starts in a Host value, or -1 (IPv6 literals kept whole). */
function portStart(host: string): number {
  const colon = host.lastIndexOf(':');
  if (colon === -1) return -1;
  const v6End = host.lastIndexOf(']');
  if (v6End === -1 || v6End < colon) return colon;
  return -1;
}

/** The Host value Envoy matches domains with: port removed (ignore_port_in_host_matching), ASCII lower case. */
export function hostForMatching(authority: string): string {
  const at = portStart(authority);
  return asciiLower(at === -1 ? authority : authority.slice(0, at));
}

/** Lower case of ASCII letters only, as absl::AsciiStrToLower (Envoy never folds other characters). */
export function asciiLower(s: string): string {
  return /[A-Z]/.test(s) ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s;
}

/** Envoy's virtual host selection over `domains` lists; the index of the chosen virtual host, or -1. */
export function selectVirtualHost(
  virtualHosts: readonly { readonly domains: readonly string[] }[],
  authority: string,
): number {
  const host = hostForMatching(authority);
  let suffix = { index: -1, length: -1 };
  let prefix = { index: -1, length: -1 };
  let any = -1;
  for (const [index, vh] of virtualHosts.entries()) {
    for (const raw of vh.domains) {
      const d = asciiLower(raw);
      if (d === host) return index;
      if (d === '*') {
        if (any === -1) any = index;
      } else if (d.startsWith('*')) {
        const s = d.slice(1);
        if (host.length > s.length && host.endsWith(s) && s.length > suffix.length)
          suffix = { index, length: s.length };
      } else if (d.endsWith('*')) {
        const p = d.slice(0, -1);
        if (host.length > p.length && host.startsWith(p) && p.length > prefix.length)
          prefix = { index, length: p.length };
      }
    }
  }
  if (suffix.index !== -1) return suffix.index;
  if (prefix.index !== -1) return prefix.index;
  return any;
}
