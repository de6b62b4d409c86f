// The ingress gateway's route table and routing decision, rule by rule against Istio's translation
// (pilot/pkg/networking/core/route/route.go, gateway.go) and Envoy's matching.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  compileRouteTable,
  type DestinationRule,
  expectedSplit,
  findRepoRoot,
  type GatewayRequest,
  gatewayRouteTable,
  loadStage,
  normalizePath,
  parseDestinationRule,
  parseGoDuration,
  parseVirtualService,
  resolveShortname,
  routeRequest,
  stageRouteTable,
  type VirtualService,
  type Workload,
} from '../src/index.js';

const root = findRepoRoot(new URL('.', import.meta.url).pathname);
const HOST = 'webapp.rollouts.svc.cluster.local';

function vs(http: string, spec = 'hosts: ["*"]\n  gateways: [rollouts/webapp-gateway]'): VirtualService {
  return parseVirtualService(
    parse(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: webapp, namespace: rollouts}
spec:
  ${spec}
  http:
${http}`),
    'test.yaml',
  );
}

const dr: DestinationRule = parseDestinationRule(
  parse(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: webapp, namespace: rollouts}
spec:
  host: ${HOST}
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
`),
  'dr.yaml',
);
const workloads: Workload[] = ['v1', 'v2'].map((version) => ({
  version,
  color: null,
  tag: version,
  labels: { app: 'webapp', version },
}));

function decide(v: VirtualService, req: Partial<GatewayRequest> = {}) {
  const compiled = compileRouteTable(gatewayRouteTable(v, [dr], workloads));
  return routeRequest(compiled, { method: 'GET', target: '/', authority: 'localhost', headers: {}, ...req });
}

/** The name of the route a request takes, or its decision kind. */
function takes(v: VirtualService, req: Partial<GatewayRequest> = {}): string {
  const d = decide(v, req);
  return d.kind === 'route' ? (d.route.name ?? '(unnamed)') : d.kind;
}

const to = (subset: string) => `route: [{destination: {host: ${HOST}, subset: ${subset}}}]`;

describe('hosts and virtual hosts', () => {
  it('short names get the namespace and svc.cluster.local; dotted names, IPs and wildcards stay', () => {
    expect(resolveShortname('localhost', 'rollouts')).toBe('localhost.rollouts.svc.cluster.local');
    expect(resolveShortname('webapp', 'rollouts')).toBe(HOST);
    expect(resolveShortname('127.0.0.1', 'rollouts')).toBe('127.0.0.1');
    expect(resolveShortname('::1', 'rollouts')).toBe('::1');
    expect(resolveShortname('*', 'rollouts')).toBe('*');
    expect(resolveShortname('*.example.com', 'rollouts')).toBe('*.example.com');
  });

  it('the repository stages: route configuration http.8080, one virtual host *:80 with domain *', () => {
    const t = stageRouteTable(loadStage(root, 'canary-25'));
    expect(t.routeConfiguration.name).toBe('http.8080');
    expect(t.routeConfiguration.virtualHosts.map((v) => [v.name, v.domains])).toEqual([['*:80', ['*']]]);
    expect(t.routeConfiguration.ignorePortInHostMatching).toBe(true);
    for (const host of ['localhost', 'localhost:8080', '127.0.0.1', '127.0.0.1:8080', HOST, 'LocalHost']) {
      expect(expectedSplit(loadStage(root, 'canary-25'), { name: host, headers: {}, host }).routeIndex).toBe(
        1,
      );
    }
  });

  it('hosts [localhost] is localhost.rollouts.svc.cluster.local: Host localhost gets 404 (no virtual host)', () => {
    const v = vs(
      `    - name: all\n      ${to('v1')}`,
      'hosts: [localhost, 127.0.0.1]\n  gateways: [webapp-gateway]',
    );
    const t = gatewayRouteTable(v, [dr], workloads);
    expect(t.routeConfiguration.virtualHosts[0]).toMatchObject({
      name: 'localhost.rollouts.svc.cluster.local:80',
      domains: ['localhost.rollouts.svc.cluster.local', '127.0.0.1'],
    });
    expect(decide(v, { authority: 'localhost:8080' }).kind).toBe('no-route');
    expect(takes(v, { authority: '127.0.0.1:8080' })).toBe('all');
    expect(takes(v, { authority: 'LOCALHOST.rollouts.svc.cluster.local' })).toBe('all');
  });

  it('*.suffix wildcards need at least one character before the suffix', () => {
    const v = vs(
      `    - name: all\n      ${to('v1')}`,
      'hosts: ["*.example.com"]\n  gateways: [rollouts/webapp-gateway]',
    );
    expect(takes(v, { authority: 'a.example.com:80' })).toBe('all');
    expect(decide(v, { authority: 'example.com' }).kind).toBe('no-route');
  });

  it('bound to the mesh only: the blackhole virtual host, no routes, every request 404', () => {
    const v = vs(`    - name: all\n      ${to('v1')}`, `hosts: [${HOST}]`);
    const t = gatewayRouteTable(v, [dr], workloads);
    expect(t.routeConfiguration.virtualHosts).toEqual([{ name: 'blackhole:80', domains: ['*'], routes: [] }]);
    expect(t.unbound).toMatch(/bound to the mesh only/);
    expect(decide(v).kind).toBe('no-route');
  });

  it('"*" on a VirtualService bound to the mesh is refused, as Istio refuses it', () => {
    expect(() =>
      vs(`    - ${to('v1')}`, 'hosts: ["*"]\n  gateways: [rollouts/webapp-gateway, mesh]'),
    ).toThrow(
      /spec\.hosts\[0\]: Istio rejects this: wildcard host \* is not allowed for virtual services bound to the mesh gateway/,
    );
  });
});

describe('matches as Envoy evaluates them', () => {
  it('RE2 syntax: [[:digit:]], \\pL, \\Q...\\E, (?P<name>...), full match', () => {
    const v = vs(`    - name: digits
      match: [{headers: {x-a: {regex: "[[:digit:]]+"}}}]
      ${to('v1')}
    - name: letters
      match: [{headers: {x-b: {regex: "\\\\pL+"}}}]
      ${to('v1')}
    - name: quoted
      match: [{headers: {x-c: {regex: "\\\\Q.*\\\\E"}}}]
      ${to('v1')}
    - name: named
      match: [{headers: {x-d: {regex: "(?P<n>ab)+"}}}]
      ${to('v1')}`);
    expect(takes(v, { headers: { 'x-a': '123' } })).toBe('digits');
    expect(takes(v, { headers: { 'x-a': '12a' } })).toBe('no-route');
    // Header values are bytes, as Node gives them (latin1): UTF-8 "héllo" is decoded before matching.
    const bytes = String.fromCharCode(...new TextEncoder().encode('héllo'));
    expect(takes(v, { headers: { 'x-b': bytes } })).toBe('letters');
    expect(takes(v, { headers: { 'x-b': '\xff' } })).toBe('unsupported'); // not UTF-8: refused, not guessed
    expect(takes(v, { headers: { 'x-c': '.*' } })).toBe('quoted');
    expect(takes(v, { headers: { 'x-c': 'anything' } })).toBe('no-route');
    expect(takes(v, { headers: { 'x-d': 'abab' } })).toBe('named');
    expect(() => vs(`    - match: [{headers: {x-a: {regex: "(?=a)"}}}]\n      ${to('v1')}`)).toThrow(
      /Istio rejects this: "headers": error parsing regexp: invalid or unsupported Perl syntax/,
    );
  });

  it('withoutHeaders: invert_match; a missing header is "" for a value match, absent for a presence match', () => {
    const v = vs(`    - name: not-one
      match: [{uri: {prefix: /a}, withoutHeaders: {x-v: {exact: "1"}}}]
      ${to('v1')}
    - name: not-anything
      match: [{uri: {prefix: /b}, withoutHeaders: {x-v: {regex: ".*"}}}]
      ${to('v1')}
    - name: not-present
      match: [{uri: {prefix: /c}, withoutHeaders: {x-v: {}}}]
      ${to('v1')}`);
    const route = (i: number) =>
      gatewayRouteTable(v, [dr], workloads).routeConfiguration.virtualHosts[0]?.routes[i];
    expect(route(0)?.match.headers).toEqual([
      { name: 'x-v', stringMatch: { exact: '1' }, invertMatch: true, treatMissingHeaderAsEmpty: true },
    ]);
    expect(route(2)?.match.headers).toEqual([{ name: 'x-v', presentMatch: true, invertMatch: true }]);
    expect(takes(v, { target: '/a' })).toBe('not-one'); // "" is not "1"
    expect(takes(v, { target: '/a', headers: { 'x-v': '1' } })).toBe('no-route');
    expect(takes(v, { target: '/a', headers: { 'x-v': '2' } })).toBe('not-one');
    expect(takes(v, { target: '/b' })).toBe('no-route'); // "" matches .*, inverted
    expect(takes(v, { target: '/c' })).toBe('not-present');
    expect(takes(v, { target: '/c', headers: { 'x-v': '' } })).toBe('no-route');
  });

  it('a header sent several times is matched as its values joined with "," (no space)', () => {
    const v = vs(`    - name: joined\n      match: [{headers: {x-v: {exact: "a,b"}}}]\n      ${to('v1')}`);
    expect(takes(v, { headers: { 'x-v': ['a', 'b'] } })).toBe('joined');
    expect(takes(v, { headers: { 'x-v': 'a, b' } })).toBe('no-route');
    expect(takes(v, { headers: { 'X-V': 'a,b' } })).toBe('no-route'); // requests come with lower-case names
  });

  it('ignoreUriCase: prefix and exact ignore ASCII case; a regex does not (Envoy ignores case_sensitive there)', () => {
    const v = vs(`    - name: prefix
      match: [{uri: {prefix: /Api}, ignoreUriCase: true}]
      ${to('v1')}
    - name: exact
      match: [{uri: {exact: /Page}, ignoreUriCase: true}]
      ${to('v1')}
    - name: regex
      match: [{uri: {regex: "/Re[0-9]"}, ignoreUriCase: true}]
      ${to('v1')}`);
    expect(takes(v, { target: '/aPI/x' })).toBe('prefix');
    expect(takes(v, { target: '/PAGE?x=1' })).toBe('exact');
    expect(takes(v, { target: '/Re1' })).toBe('regex');
    expect(takes(v, { target: '/re1' })).toBe('no-route');
  });

  it('method: a :method header matcher after the others', () => {
    const v = vs(`    - name: writes
      match: [{method: {regex: "POST|PUT"}, headers: {x-z: {}}}]
      ${to('v1')}`);
    const m = gatewayRouteTable(v, [dr], workloads).routeConfiguration.virtualHosts[0]?.routes[0]?.match;
    expect(m?.headers?.map((h) => h.name)).toEqual(['x-z', ':method']);
    expect(takes(v, { method: 'PUT', headers: { 'x-z': '' } })).toBe('writes');
    expect(takes(v, { method: 'GET', headers: { 'x-z': '' } })).toBe('no-route');
  });

  it('an empty prefix: refused on a header or method (Istio), accepted on the uri (matches every path)', () => {
    expect(() => vs(`    - match: [{headers: {x-a: {prefix: ""}}}]\n      ${to('v1')}`)).toThrow(
      /headers\.x-a\.prefix: Istio rejects this: "headers": prefix string match should not be empty/,
    );
    expect(() => vs(`    - match: [{method: {prefix: ""}}]\n      ${to('v1')}`)).toThrow(
      /prefix string match should not be empty/,
    );
    const v = vs(`    - name: any\n      match: [{uri: {prefix: ""}}]\n      ${to('v1')}`);
    expect(takes(v, { target: '/whatever' })).toBe('any');
  });

  it('routes after a catch-all are not sent to Envoy; a route with several matches is one Envoy route each', () => {
    const v = vs(`    - name: two
      match: [{name: a, uri: {exact: /a}}, {name: b, uri: {exact: /b}}]
      ${to('v1')}
    - name: all
      ${to('v2')}
    - name: never
      ${to('v1')}`);
    const routes = gatewayRouteTable(v, [dr], workloads).routeConfiguration.virtualHosts[0]?.routes ?? [];
    expect(routes.map((r) => r.name)).toEqual(['two.a', 'two.b', 'all']);
    expect(routes[2]?.match).toEqual({ prefix: '/' }); // no match: no caseSensitive, as Istio builds it
  });
});

describe('paths as the gateway normalises them (normalize_path, no merge_slashes, escaped slashes kept)', () => {
  it.each([
    ['/a/./b/../c', '/a/c'],
    ['/../x', '/x'],
    ['/a/%2e%2E/b', '/b'],
    ['/%7Euser/%61', '/~user/a'],
    ['/a%2Fb', '/a%2Fb'],
    ['/a%2fb', '/a%2fb'],
    ['//a', '//a'],
    ['/a/..?x=/../', '/?x=/../'],
    ['/a.b/.c', '/a.b/.c'],
  ])('%s -> %s', (target, path) => {
    expect(normalizePath(target)).toEqual({ kind: 'ok', path });
  });

  it('an escaped NUL is rejected (Envoy answers 400); a raw backslash or an absolute URL is not emulated', () => {
    expect(normalizePath('/a%00').kind).toBe('rejected');
    expect(normalizePath('/a\\b').kind).toBe('unsupported');
    expect(normalizePath('http://x/a').kind).toBe('unsupported');
    const v = vs(`    - name: c\n      match: [{uri: {exact: /c}}]\n      ${to('v1')}`);
    expect(takes(v, { target: '/b/../c' })).toBe('c');
    expect(decide(v, { target: '/a%00' })).toMatchObject({ kind: 'rejected', status: 400 });
  });
});

describe('destinations, weights, retries and headers in the table', () => {
  it('weights need not add up to 100: kept as written, split in proportion; 0-weight clusters left out', () => {
    const v = vs(`    - name: split
      route:
        - {destination: {host: ${HOST}, subset: v1}, weight: 1}
        - {destination: {host: ${HOST}, subset: v2}, weight: 3}
        - {destination: {host: ${HOST}, subset: v1, port: {number: 80}}, weight: 0}`);
    const action = gatewayRouteTable(v, [dr], workloads).routeConfiguration.virtualHosts[0]?.routes[0]?.route;
    expect(action?.weightedClusters?.clusters).toEqual([
      { name: `outbound|80|v1|${HOST}`, weight: 1 },
      { name: `outbound|80|v2|${HOST}`, weight: 3 },
    ]);
    expect(expectedSplit(v, undefined, dr, workloads).versions).toEqual({ v1: 0.25, v2: 0.75 });
  });

  it('a destination host other than the app is refused, the field named; a short name of the app is the app', () => {
    const other = vs(`    - route: [{destination: {host: reviews, subset: v1}}]`);
    expect(() => gatewayRouteTable(other, [dr], workloads)).toThrow(
      /spec\.http\[0\]\.route\[0\]\.destination\.host: destination host "reviews" \(reviews\.rollouts\.svc\.cluster\.local\) is not the app's Service/,
    );
    const short = vs(`    - route: [{destination: {host: webapp, subset: v1}}]`);
    expect(gatewayRouteTable(short, [dr], workloads).clusters.map((c) => c.name)).toEqual([
      `outbound|80|v1|${HOST}`,
    ]);
  });

  it('a subset the DestinationRule lacks is a cluster Istio does not create (503 NC); endpoints by labels', () => {
    const v = vs(`    - route: [{destination: {host: ${HOST}, subset: v3}}]\n    - ${to('v2')}`);
    const t = gatewayRouteTable(v, [dr], workloads);
    expect(t.clusters).toEqual([
      expect.objectContaining({ name: `outbound|80|v3|${HOST}`, exists: false, endpoints: [] }),
    ]);
    const ok = gatewayRouteTable(vs(`    - ${to('v2')}`), [dr], workloads).clusters[0];
    expect(ok).toMatchObject({ exists: true, endpoints: [{ workload: 'webapp-v2', version: 'v2' }] });
  });

  it("Istio's default retry policy on every route; attempts 0 removes it; retryOn codes become retriable codes", () => {
    const v = vs(`    - name: default
      match: [{uri: {prefix: /a}}]
      ${to('v1')}
    - name: off
      match: [{uri: {prefix: /b}}]
      retries: {attempts: 0}
      ${to('v1')}
    - name: codes
      retries: {attempts: 3, retryOn: "5xx,503", backoff: 0.1s}
      timeout: 2s
      ${to('v1')}`);
    const routes = gatewayRouteTable(v, [dr], workloads).routeConfiguration.virtualHosts[0]?.routes ?? [];
    expect(routes[0]?.route).toEqual({
      cluster: `outbound|80|v1|${HOST}`,
      timeout: '0s',
      maxGrpcTimeout: '0s',
      retryPolicy: {
        retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
        numRetries: 2,
        retryHostPredicate: [
          {
            name: 'envoy.retry_host_predicates.previous_hosts',
            typedConfig: {
              '@type':
                'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
            },
          },
        ],
        hostSelectionRetryMaxAttempts: '5',
      },
    });
    expect(routes[1]?.route.retryPolicy).toBeUndefined();
    expect(routes[2]?.route).toMatchObject({
      timeout: '2s',
      retryPolicy: {
        numRetries: 3,
        retryOn: '5xx,retriable-status-codes',
        retriableStatusCodes: [503],
        retryBackOff: { baseInterval: '0.100s' },
      },
    });
  });

  it("durations in Go's syntax, as Istio's decoder reads them (1m, 1500ms), printed in seconds (differential test)", () => {
    const v = vs(`    - name: go
      timeout: 1m
      retries: {attempts: 2, perTryTimeout: 1500ms, backoff: 1h1s}
      ${to('v1')}`);
    const route = gatewayRouteTable(v, [dr], workloads).routeConfiguration.virtualHosts[0]?.routes[0]?.route;
    expect(route).toMatchObject({
      timeout: '60s',
      maxGrpcTimeout: '60s',
      retryPolicy: { perTryTimeout: '1.500s', retryBackOff: { baseInterval: '3601s' } },
    });
    for (const [bad, problem] of [
      ['1.5', 'bad Duration'],
      ['0s', 'duration must be greater than 1ms'],
      ['-1s', 'duration must be greater than 1ms'],
      ['1.0005s', 'only durations to ms precision are supported'],
    ]) {
      expect(() => vs(`    - timeout: "${bad}"\n      ${to('v1')}`), bad).toThrow(problem);
    }
    expect(parseGoDuration('1h30m0.25s')).toBe(5_400_250_000_000n);
    expect(parseGoDuration('250µs')).toBe(250_000n);
    expect(parseGoDuration('.5s')).toBe(500_000_000n);
    expect(parseGoDuration('0')).toBe(0n);
    expect(parseGoDuration('5')).toBeNull();
    expect(parseGoDuration('.s')).toBeNull();
    expect(parseGoDuration('1d')).toBeNull();
  });

  it('a VirtualService without namespace is read in `default`, where kubectl applies it (differential test)', () => {
    const v = parseVirtualService(
      parse(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: webapp}
spec:
  hosts: [localhost]
  gateways: [rollouts/webapp-gateway]
  http:
    - ${to('v1')}`),
      'test.yaml',
    );
    const table = gatewayRouteTable(v, [dr], workloads);
    expect(table.routeConfiguration.virtualHosts[0]?.domains).toEqual([
      'localhost.default.svc.cluster.local',
    ]);
    expect(table.routeConfiguration.virtualHosts[0]?.routes[0]?.metadata.filterMetadata.istio.config).toBe(
      '/apis/networking.istio.io/v1/namespaces/default/virtual-service/webapp',
    );
    // The short gateway name is looked up in `default` too: not the Gateway of namespace rollouts.
    const short = parseVirtualService(
      parse(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: webapp}
spec:
  hosts: ["*"]
  gateways: [webapp-gateway]
  http:
    - ${to('v1')}`),
      'test.yaml',
    );
    expect(gatewayRouteTable(short, [dr], workloads).unbound).toMatch(
      /do not name the Gateway rollouts\/webapp-gateway/,
    );
  });

  it('response headers: set (overwrite) then add (append), each sorted by name, and remove', () => {
    const v = vs(`    - name: h
      headers: {response: {set: {x-b: "2", X-A: "1"}, add: {x-c: "3"}, remove: [x-d]}}
      ${to('v1')}`);
    const r = gatewayRouteTable(v, [dr], workloads).routeConfiguration.virtualHosts[0]?.routes[0];
    expect(r?.responseHeadersToAdd).toEqual([
      { header: { key: 'X-A', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-b', value: '2' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-c', value: '3' } },
    ]);
    expect(r?.responseHeadersToRemove).toEqual(['x-d']);
  });

  it('an empty response header value is left out of the option, as protojson prints it (differential test)', () => {
    const v = vs(`    - name: h
      headers: {response: {set: {x-a: ""}, add: {x-b: ""}}}
      ${to('v1')}`);
    const r = gatewayRouteTable(v, [dr], workloads).routeConfiguration.virtualHosts[0]?.routes[0];
    expect(r?.responseHeadersToAdd).toEqual([
      { header: { key: 'x-a' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-b' } },
    ]);
  });
});
