{{/*
The chart's name, overridable with nameOverride.
*/}}
{{- define "meshintent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else RELEASE-meshintent. Truncated to 63 characters (DNS label).
*/}}
{{- define "meshintent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "meshintent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels selecting the release's pods (must not change between upgrades).
*/}}
{{- define "meshintent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshintent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Standard labels of every object.
*/}}
{{- define "meshintent.labels" -}}
helm.sh/chart: {{ include "meshintent.chart" . }}
{{ include "meshintent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | toString | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The service account the pods run as.
*/}}
{{- define "meshintent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "meshintent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret with DATABASE_URL and MESHINTENT_SECRET_KEY: existingSecret, else the chart's own.
*/}}
{{- define "meshintent.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- include "meshintent.fullname" . }}
{{- end }}
{{- end }}

{{/*
The container image: repository:tag, the tag defaulting to the chart's appVersion.
*/}}
{{- define "meshintent.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
The optional settings under .Values.config as env entries; values left empty or null are not
rendered (meshintent then uses its built-in default). A map ranges in key order, so the output
is stable.
*/}}
{{- define "meshintent.configEnv" -}}
{{- $env := dict
      "MESHINTENT_DEPLOY_WORKER" .Values.config.deployWorker
      "MESHINTENT_DEPLOY_LEASE" .Values.config.deployLease
      "MESHINTENT_CLUSTER_CONCURRENCY" .Values.config.clusterConcurrency
      "MESHINTENT_OBJECT_CONCURRENCY" .Values.config.objectConcurrency
      "MESHINTENT_RETRY_ATTEMPTS" .Values.config.retryAttempts
      "MESHINTENT_LOG" .Values.config.log }}
{{- range $name, $value := $env }}
{{- if and (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Secret with the bootstrap admin token: auth.bootstrapToken.existingSecret, else the chart's
own when auth.bootstrapToken.create, else nothing (no MESHINTENT_BOOTSTRAP_TOKEN).
*/}}
{{- define "meshintent.bootstrapTokenSecretName" -}}
{{- if .Values.auth.bootstrapToken.existingSecret }}
{{- .Values.auth.bootstrapToken.existingSecret }}
{{- else if .Values.auth.bootstrapToken.create }}
{{- printf "%s-bootstrap-token" (include "meshintent.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The key of the bootstrap token in its Secret (a valid Secret key).
*/}}
{{- define "meshintent.bootstrapTokenKey" -}}
{{- $key := toString (required "auth.bootstrapToken.key must name the key of the token in its Secret" .Values.auth.bootstrapToken.key) }}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+$" $key) }}
{{- fail (printf "auth.bootstrapToken.key %q is not a valid Secret key (letters, digits, '-', '_', '.')" $key) }}
{{- end }}
{{- $key }}
{{- end }}

{{/*
"true" when OIDC is enabled (auth.oidc.issuer and auth.oidc.audience set), else empty. Fails when
only one of them is set: meshintent refuses to start then.
*/}}
{{- define "meshintent.oidcEnabled" -}}
{{- $oidc := .Values.auth.oidc }}
{{- if and $oidc.issuer $oidc.audience }}
{{- "true" }}
{{- else if or $oidc.issuer $oidc.audience }}
{{- fail "set both auth.oidc.issuer and auth.oidc.audience (or neither, for API tokens only)" }}
{{- end }}
{{- end }}

{{/*
The ConfigMap holding the OIDC JWKS (auth.oidc.jwksConfigMap.name) when OIDC is enabled, else
empty.
*/}}
{{- define "meshintent.oidcJwksConfigMap" -}}
{{- if include "meshintent.oidcEnabled" . }}
{{- with .Values.auth.oidc.jwksConfigMap }}
{{- .name }}
{{- end }}
{{- end }}
{{- end }}

{{/*
MESHINTENT_OIDC_JWKS: the mounted ConfigMap's file, else auth.oidc.jwks, else empty (discovery).
*/}}
{{- define "meshintent.oidcJwks" -}}
{{- if include "meshintent.oidcJwksConfigMap" . }}
{{- if .Values.auth.oidc.jwks }}
{{- fail "set auth.oidc.jwks or auth.oidc.jwksConfigMap.name, not both" }}
{{- end }}
{{- "/etc/meshintent/oidc/jwks.json" }}
{{- else }}
{{- .Values.auth.oidc.jwks }}
{{- end }}
{{- end }}

{{/*
A positive integer setting as a quoted env value. Numbers from values.yaml are float64 and would
print large ones as 1.048576e+06, so they go through int64 (which also turns text that is no
number into 0, refused here). Call with (list "the.value.path" value).
*/}}
{{- define "meshintent.positiveInt" -}}
{{- $path := index . 0 }}
{{- $value := index . 1 }}
{{- $number := int64 $value }}
{{- if le $number 0 }}
{{- fail (printf "%s must be a positive whole number, not %v" $path $value) }}
{{- end }}
{{- $number | toString | quote }}
{{- end }}
