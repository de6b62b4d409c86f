{{/*
Chart name, truncated to 63 characters (the label value limit).
*/}}
{{- define "webapp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: "<release>-<chart>", or the release name when it already contains the chart name (release "webapp" of
chart "webapp" gives "webapp"). Truncated so that "<fullname>-<version>-test" stays a valid DNS label.
*/}}
{{- define "webapp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 37 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 37 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 37 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "webapp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of the objects shared by every version (Service, ServiceAccount). No app.kubernetes.io/version: these
objects span versions; each version's objects carry their own (see webapp.versionLabels).
*/}}
{{- define "webapp.labels" -}}
helm.sh/chart: {{ include "webapp.chart" . }}
{{ include "webapp.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app: {{ include "webapp.name" . }}
{{- end }}

{{/*
Selector of the shared Service: every version of this release.
*/}}
{{- define "webapp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webapp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector of one version's pods (Deployment, PDB, test Service): name + instance + version. Never changes for a
given version, so Deployment selectors stay immutable-safe across upgrades.
Context: dict "root" $ "name" <version name>.
*/}}
{{- define "webapp.versionSelectorLabels" -}}
{{ include "webapp.selectorLabels" .root }}
version: {{ .name }}
{{- end }}

{{/*
Labels of one version's objects and pods: the shared labels plus version, app.kubernetes.io/version (the version
name, not the chart's appVersion) and, when the version has one, its blue-green colour.
Context: dict "root" $ "name" <version name> "cfg" <effective version config>.
*/}}
{{- define "webapp.versionLabels" -}}
{{ include "webapp.labels" .root }}
version: {{ .name }}
app.kubernetes.io/version: {{ .name }}
{{- with .cfg.color }}
color: {{ . }}
{{- end }}
{{- end }}

{{/*
Labels of the `helm test` objects. Deliberately without app.kubernetes.io/name: a test pod must never match the
shared Service's selector (name + instance) nor a version's.
*/}}
{{- define "webapp.testLabels" -}}
helm.sh/chart: {{ include "webapp.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "webapp.name" . }}
app.kubernetes.io/component: test
app: {{ include "webapp.name" . }}-test
{{- end }}

{{/*
The ServiceAccount the app pods run as.
*/}}
{{- define "webapp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webapp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Effective config of one version: versionDefaults overlaid with the version's own keys, key by key (resources down
to requests/limits.cpu/memory, autoscaling and env one level). Written with hasKey and set rather than sprig's
merge, which treats false and 0 as unset and would let a default `enabled: true` override a version's false.
Context: dict "root" $ "name" <version name> "version" <versions entry> "out" <dict to fill>.
*/}}
{{- define "webapp.versionConfig" -}}
{{- $d := .root.Values.versionDefaults -}}
{{- $v := .version -}}
{{- range $key := list "enabled" "replicas" -}}
{{- $_ := set $.out $key (ternary (get $v $key) (get $d $key) (hasKey $v $key)) -}}
{{- end -}}
{{- $resources := deepCopy $d.resources -}}
{{- range $section, $values := ($v.resources | default dict) -}}
{{- range $k, $val := $values }}{{ $_ := set (get $resources $section) $k $val }}{{ end -}}
{{- end -}}
{{- $_ := set .out "resources" $resources -}}
{{- $autoscaling := deepCopy $d.autoscaling -}}
{{- range $k, $val := ($v.autoscaling | default dict) }}{{ $_ := set $autoscaling $k $val }}{{ end -}}
{{- $_ := set .out "autoscaling" $autoscaling -}}
{{- $env := deepCopy $d.env -}}
{{- range $k, $val := ($v.env | default dict) }}{{ $_ := set $env $k $val }}{{ end -}}
{{- $_ := set .out "env" $env -}}
{{- $_ := set .out "tag" $v.tag -}}
{{- $_ := set .out "color" ($v.color | default "") -}}
{{- $hpa := .out.autoscaling -}}
{{- $_ := set .out "minReplicas" (ternary $hpa.minReplicas .out.replicas $hpa.enabled) -}}
{{- end }}

{{/*
An env value as a string in the plain decimal form the app parses. Numbers from YAML or --set arrive as float64:
whole ones are printed as integers (1000000, not "1e+06"), others in fixed notation (0.00001, not "1e-05").
*/}}
{{- define "webapp.envValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else if kindIs "float64" . -}}
{{- regexReplaceAll "0+$" (printf "%.12f" .) "" | trimSuffix "." -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end }}

{{/*
Checks the rules a JSON schema cannot express; fails the render with a message naming the values to change.
Included by every template that renders versions, so any subset of templates (--show-only) is checked too.
*/}}
{{- define "webapp.validate" -}}
{{- $colours := dict -}}
{{- $enabled := 0 -}}
{{- range $name, $v := .Values.versions -}}
{{- $cfg := dict -}}
{{- include "webapp.versionConfig" (dict "root" $ "name" $name "version" $v "out" $cfg) -}}
{{- if $cfg.enabled -}}
{{- $enabled = add1 $enabled -}}
{{- range $reserved := list "PORT" "SHUTDOWN_DRAIN_MS" "SHUTDOWN_TIMEOUT_MS" "APP_COLOR" -}}
{{- if hasKey $cfg.env $reserved -}}
{{- fail (printf "versions.%s.env.%s is set by the chart (containerPort, shutdown.*, color): remove it from env" $name $reserved) -}}
{{- end -}}
{{- end -}}
{{- with $cfg.color -}}
{{- if hasKey $colours . -}}
{{- fail (printf "versions.%s.color and versions.%s.color are both %q: blue-green needs at most one enabled version per colour (disable one, or leave the new one without color until it takes over)" (get $colours .) $name .) -}}
{{- end -}}
{{- $_ := set $colours . $name -}}
{{- end -}}
{{- if and $cfg.autoscaling.enabled (lt (int $cfg.autoscaling.maxReplicas) (int $cfg.autoscaling.minReplicas)) -}}
{{- fail (printf "versions.%s.autoscaling: maxReplicas (%v) must be >= minReplicas (%v)" $name $cfg.autoscaling.maxReplicas $cfg.autoscaling.minReplicas) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq $enabled 0 -}}
{{- fail "versions: no version is enabled; enable at least one (versions.<name>.enabled=true)" -}}
{{- end -}}
{{- $s := .Values.shutdown -}}
{{- if ge (int $s.drainMs) (int $s.timeoutMs) -}}
{{- fail (printf "shutdown.drainMs (%v) must be below shutdown.timeoutMs (%v): the drain happens inside the shutdown timeout" $s.drainMs $s.timeoutMs) -}}
{{- end -}}
{{- $latestExit := add (int $s.preStopSleepSeconds) (div (add (int $s.timeoutMs) 999) 1000) -}}
{{- if le (int $s.terminationGracePeriodSeconds) $latestExit -}}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%v) must exceed preStopSleepSeconds + timeoutMs/1000 = %v s, the app's latest exit; e.g. %v" $s.terminationGracePeriodSeconds $latestExit (add $latestExit 5)) -}}
{{- end -}}
{{- end }}
