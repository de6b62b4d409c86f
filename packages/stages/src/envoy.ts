/**
 * The route configuration Istio's ingress gateway receives for a stage, in the shape of Envoy's protos as protojson
 * prints them (camelCase names; proto3 fields at their default value left out; wrapper types, durations and
 * messages printed), so a table built here and one printed by `istioctl proxy-config routes ... -o json` compare
 * field by field. Only the fields Istio sets for the VirtualService subset this repository reads are modelled.
 *
 * Beside Envoy's fields, each virtual host carries `clusters`: the clusters its routes name, whether Istio would
 * create them (a subset the DestinationRule defines, the Service's port) and their endpoints (the workloads whose
 * labels the subset selects). That part is not in a RouteConfiguration; `istioctl proxy-config clusters` and
 * `endpoints` show it on a cluster.
 */

/** envoy.type.matcher.v3.RegexMatcher (Istio sets only the expression). */
export interface RegexMatcher {
  regex: string;
}

/** envoy.type.matcher.v3.StringMatcher, as Istio's ConvertToEnvoyMatch fills it. */
export interface StringMatcher {
  exact?: string;
  prefix?: string;
  safeRegex?: RegexMatcher;
}

/** envoy.config.route.v3.HeaderMatcher. */
export interface HeaderMatcher {
  name: string;
  stringMatch?: StringMatcher;
  presentMatch?: boolean;
  invertMatch?: boolean;
  treatMissingHeaderAsEmpty?: boolean;
}

/** envoy.config.route.v3.QueryParameterMatcher (HTTPRoute query matches). */
export interface QueryParameterMatcher {
  name: string;
  stringMatch?: StringMatcher;
  presentMatch?: boolean;
}

/**
 * envoy.config.route.v3.RouteMatch: one path specifier (prefix, path, safeRegex or, from an HTTPRoute's
 * PathPrefix, pathSeparatedPrefix), caseSensitive always set.
 */
export interface RouteMatch {
  prefix?: string;
  path?: string;
  safeRegex?: RegexMatcher;
  /** Matches the path equal to it or followed by `/` (HTTPRoute PathPrefix other than "/"). */
  pathSeparatedPrefix?: string;
  /** google.protobuf.BoolValue: Istio always sets it (`!ignoreUriCase`). Envoy ignores it for safeRegex. */
  caseSensitive: boolean;
  headers?: HeaderMatcher[];
  /** HTTPRoute query matches: the first value of the parameter is compared. */
  queryParameters?: QueryParameterMatcher[];
}

/** envoy.config.route.v3.WeightedCluster.ClusterWeight. */
export interface ClusterWeight {
  name: string;
  /** google.protobuf.UInt32Value. */
  weight: number;
}

/** envoy.config.route.v3.RetryPolicy.RetryHostPredicate (its typed config is empty). */
export interface RetryHostPredicate {
  name: string;
  typedConfig: { '@type': string };
}

/** envoy.config.route.v3.RetryPolicy, as Istio's retry.ConvertPolicy builds it. */
export interface RetryPolicy {
  retryOn: string;
  /** google.protobuf.UInt32Value. */
  numRetries: number;
  /** google.protobuf.Duration, e.g. "2s". */
  perTryTimeout?: string;
  retryPriority?: { name: string; typedConfig: { '@type': string; updateFrequency: number } };
  retryHostPredicate?: RetryHostPredicate[];
  /** int64: protojson prints it as a string. */
  hostSelectionRetryMaxAttempts?: string;
  retriableStatusCodes?: number[];
  retryBackOff?: { baseInterval: string };
}

/** envoy.config.route.v3.RouteAction: a single cluster or weighted clusters. */
export interface RouteAction {
  cluster?: string;
  weightedClusters?: { clusters: ClusterWeight[] };
  /** google.protobuf.Duration; "0s" (Istio's default) disables the route timeout. */
  timeout: string;
  retryPolicy?: RetryPolicy;
  /** google.protobuf.Duration: Istio sets it to the timeout. */
  maxGrpcTimeout: string;
  /** Gateway API routes: Envoy answers 500 (not 503) for a cluster that does not exist. */
  clusterNotFoundResponseCode?: 'INTERNAL_SERVER_ERROR';
}

/**
 * envoy.config.core.v3.HeaderValueOption. APPEND_IF_EXISTS_OR_ADD is the enum's default: protojson omits it, and an
 * empty `value` too. Istio never sets `keep_empty_value`, so Envoy skips an option whose value is empty: the
 * header is neither set nor added (the upstream's stays).
 */
export interface HeaderValueOption {
  header: { key: string; value?: string };
  appendAction?: 'OVERWRITE_IF_EXISTS_OR_ADD';
}

/** envoy.config.route.v3.Route. */
export interface Route {
  /** The http route's name, `.<match name>` appended when the match entry has one; omitted when empty. */
  name?: string;
  match: RouteMatch;
  route: RouteAction;
  metadata: { filterMetadata: { istio: { config: string } } };
  decorator: { operation: string };
  responseHeadersToAdd?: HeaderValueOption[];
  responseHeadersToRemove?: string[];
  /** HTTPRoute RequestHeaderModifier: what the upstream receives (set overwrites, add appends). */
  requestHeadersToAdd?: HeaderValueOption[];
  requestHeadersToRemove?: string[];
}

/** envoy.config.route.v3.VirtualHost. */
export interface VirtualHost {
  /** `<first domain>:<Gateway server port>`, e.g. "*:80"; "blackhole:80" when no VirtualService applies. */
  name: string;
  domains: string[];
  routes: Route[];
  includeRequestAttemptCount?: boolean;
}

/** envoy.config.route.v3.RouteConfiguration of the gateway's HTTP server. */
export interface RouteConfiguration {
  /** `http.<port the gateway pod listens on>`: http.8080 for the Gateway's port 80 (scripts/istio-operator.yaml). */
  name: string;
  virtualHosts: VirtualHost[];
  /** google.protobuf.BoolValue: always printed. */
  validateClusters: false;
  ignorePortInHostMatching: boolean;
  /** google.protobuf.UInt32Value. */
  maxDirectResponseBodySizeBytes: number;
}
