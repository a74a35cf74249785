{{/* Names ---------------------------------------------------------------- */}}
{{- define "shoppulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shoppulse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>", component in enrich|profiles|insights|topics */}}
{{- define "shoppulse.componentName" -}}
{{- printf "%s-%s" (include "shoppulse.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "shoppulse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "shoppulse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels --------------------------------------------------------------- */}}
{{- define "shoppulse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "shoppulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shoppulse
{{- end -}}

{{/* Selector labels of one component: {root, component} */}}
{{- define "shoppulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shoppulse.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "shoppulse.componentLabels" -}}
{{ include "shoppulse.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image of one component: {root, stage} where stage is .Values.enrich / .profiles / .insights */}}
{{- define "shoppulse.image" -}}
{{- $repo := default .root.Values.image.repository .stage.image.repository -}}
{{- $tag := default (default .root.Chart.AppVersion .root.Values.image.tag) .stage.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* Settings -> env ------------------------------------------------------
Flattens .Values.settings into SHOPPULSE_<GROUP>__<FIELD> names, then applies what the chart
must decide itself (listening host, data dir on the volume, bundle override, Kafka security).
Numbers arrive from YAML as float64: whole ones are printed as integers so that 604800000
does not become 6.048e+08. Returns YAML (a map) for fromYaml. */}}
{{- define "shoppulse.scalarString" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{- define "shoppulse.settingsEnv" -}}
{{- $env := dict -}}
{{- range $group, $fields := .Values.settings -}}
{{- if kindIs "map" $fields -}}
{{- range $field, $value := $fields -}}
{{- $name := printf "SHOPPULSE_%s__%s" (upper $group) (upper $field) -}}
{{- if kindIs "map" $value -}}
{{- if $value -}}{{- $_ := set $env $name (toJson $value) -}}{{- end -}}
{{- else -}}
{{- $_ := set $env $name (include "shoppulse.scalarString" $value) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- $_ := set $env (printf "SHOPPULSE_%s" (upper $group)) (include "shoppulse.scalarString" $fields) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $env "SHOPPULSE_HTTP__HOST" "0.0.0.0" -}}
{{- $_ := set $env "SHOPPULSE_HTTP__ENRICH_PORT" (include "shoppulse.enrichPort" .) -}}
{{- $_ := set $env "SHOPPULSE_HTTP__PROFILES_PORT" (include "shoppulse.profilesPort" .) -}}
{{- $_ := set $env "SHOPPULSE_HTTP__INSIGHTS_PORT" (include "shoppulse.insightsPort" .) -}}
{{- $_ := set $env "SHOPPULSE_PROFILES__DATA_DIR" (include "shoppulse.profilesDataDir" .) -}}
{{- $_ := set $env "SHOPPULSE_INSIGHTS__DATA_DIR" (include "shoppulse.insightsDataDir" .) -}}
{{- $bundleDir := include "shoppulse.bundleDir" . -}}
{{- if $bundleDir -}}{{- $_ := set $env "SHOPPULSE_ENRICH__BUNDLE_DIR" $bundleDir -}}{{- end -}}
{{- with .Values.kafka.securityProtocol -}}{{- $_ := set $env "SHOPPULSE_KAFKA_OPT_SECURITY_PROTOCOL" . -}}{{- end -}}
{{- with .Values.kafka.sasl.mechanism -}}{{- $_ := set $env "SHOPPULSE_KAFKA_OPT_SASL_MECHANISM" . -}}{{- end -}}
{{- with .Values.kafka.tls -}}
{{- if .existingSecret -}}
{{- if .caKey -}}{{- $_ := set $env "SHOPPULSE_KAFKA_OPT_SSL_CA_LOCATION" (printf "%s/%s" .mountPath .caKey) -}}{{- end -}}
{{- if .certKey -}}{{- $_ := set $env "SHOPPULSE_KAFKA_OPT_SSL_CERTIFICATE_LOCATION" (printf "%s/%s" .mountPath .certKey) -}}{{- end -}}
{{- if .keyKey -}}{{- $_ := set $env "SHOPPULSE_KAFKA_OPT_SSL_KEY_LOCATION" (printf "%s/%s" .mountPath .keyKey) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{- define "shoppulse.enrichPort" -}}
{{- include "shoppulse.scalarString" (.Values.settings.http.enrich_port | default 9464) -}}
{{- end -}}

{{- define "shoppulse.profilesPort" -}}
{{- include "shoppulse.scalarString" (.Values.settings.http.profiles_port | default 6066) -}}
{{- end -}}

{{- define "shoppulse.insightsPort" -}}
{{- include "shoppulse.scalarString" (.Values.settings.http.insights_port | default 6067) -}}
{{- end -}}

{{/* The HTTP port of one stage: {root, component} */}}
{{- define "shoppulse.stagePort" -}}
{{- include (printf "shoppulse.%sPort" .component) .root -}}
{{- end -}}

{{/* A faust stage's table store: "<persistence.mountPath>/<component>", on the PVC. */}}
{{- define "shoppulse.dataDir" -}}
{{- printf "%s/%s" (index .root.Values .component).persistence.mountPath .component -}}
{{- end -}}

{{- define "shoppulse.profilesDataDir" -}}
{{- include "shoppulse.dataDir" (dict "root" . "component" "profiles") -}}
{{- end -}}

{{- define "shoppulse.insightsDataDir" -}}
{{- include "shoppulse.dataDir" (dict "root" . "component" "insights") -}}
{{- end -}}

{{/* Where enrich reads its bundle when overridden; empty = the bundle baked into the image. */}}
{{- define "shoppulse.bundleDir" -}}
{{- if .Values.enrich.bundle.image -}}
/models/bundle
{{- else if .Values.enrich.bundle.existingClaim -}}
{{- printf "/models/pvc/%s" (.Values.enrich.bundle.subPath | trimPrefix "/") | trimSuffix "/" -}}
{{- end -}}
{{- end -}}

{{/* Pod env that must come from Secrets (never from the ConfigMap). */}}
{{- define "shoppulse.secretEnv" -}}
{{- with .Values.kafka.sasl -}}
{{- if .existingSecret }}
- name: SHOPPULSE_KAFKA_OPT_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .usernameKey }}
- name: SHOPPULSE_KAFKA_OPT_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .passwordKey }}
{{- end -}}
{{- end -}}
{{- with .Values.kafka.tls -}}
{{- if and .existingSecret .keyPasswordKey }}
- name: SHOPPULSE_KAFKA_OPT_SSL_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .keyPasswordKey }}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "shoppulse.tlsVolumeMount" -}}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: {{ .Values.kafka.tls.mountPath }}
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "shoppulse.tlsVolume" -}}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret }}
    defaultMode: 0440
{{- end -}}
{{- end -}}

{{/* Soft spread over each topology key: {root, component} */}}
{{- define "shoppulse.topologySpread" -}}
{{- $root := .root -}}
{{- $component := .component -}}
{{- with $root.Values.topologySpread -}}
{{- if .enabled }}
topologySpreadConstraints:
{{- range .topologyKeys }}
  - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "shoppulse.selectorLabels" (dict "root" $root "component" $component) | nindent 8 }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Checks that fail the render with a message instead of deploying something broken. */}}
{{- define "shoppulse.validate" -}}
{{- $partitions := int (.Values.settings.kafka.partitions | default 6) -}}
{{- $enrichMax := int .Values.enrich.replicas -}}
{{- if .Values.enrich.keda.enabled -}}{{- $enrichMax = int .Values.enrich.keda.maxReplicas -}}
{{- else if .Values.enrich.autoscaling.enabled -}}{{- $enrichMax = int .Values.enrich.autoscaling.maxReplicas -}}{{- end -}}
{{- if and .Values.enrich.enabled (gt $enrichMax $partitions) -}}
{{- fail (printf "enrich can reach %d replicas but settings.kafka.partitions is %d: replicas beyond the partition count sit idle; raise partitions or lower the replica ceiling" $enrichMax $partitions) -}}
{{- end -}}
{{- range $component := list "profiles" "insights" -}}
{{- $stage := index $.Values $component -}}
{{- if and $stage.enabled (gt (int $stage.replicas) $partitions) -}}
{{- fail (printf "%s.replicas=%d exceeds settings.kafka.partitions=%d: extra workers hold no table partitions" $component (int $stage.replicas) $partitions) -}}
{{- end -}}
{{- end -}}
{{- with .Values.settings.insights -}}
{{- $window := float64 (.window_s | default 3600) -}}
{{- $rolling := float64 (.rolling_s | default 86400) -}}
{{- $retention := float64 (.retention_s | default 172800) -}}
{{- if lt $retention (addf $rolling $window) -}}
{{- fail (printf "settings.insights.retention_s (%s) must be at least rolling_s + window_s (%s): the insights stage would refuse to start" (include "shoppulse.scalarString" $retention) (include "shoppulse.scalarString" (addf $rolling $window))) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.enrich.bundle.image .Values.enrich.bundle.existingClaim -}}
{{- fail "enrich.bundle: set either image or existingClaim, not both" -}}
{{- end -}}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) -}}
{{- fail "kafka.sasl.mechanism is set but kafka.sasl.existingSecret is empty: credentials come only from an existing Secret" -}}
{{- end -}}
{{- if and .Values.kafka.sasl.mechanism (not (hasPrefix "SASL_" .Values.kafka.securityProtocol)) -}}
{{- fail "kafka.sasl.mechanism needs kafka.securityProtocol SASL_SSL or SASL_PLAINTEXT" -}}
{{- end -}}
{{- if and .Values.kafka.tls.existingSecret (not (has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL"))) -}}
{{- fail "kafka.tls.existingSecret needs kafka.securityProtocol SSL or SASL_SSL" -}}
{{- end -}}
{{- if le (float64 .Values.enrich.terminationGracePeriodSeconds) (float64 (.Values.settings.enrich.shutdown_timeout_s | default 30)) -}}
{{- fail "enrich.terminationGracePeriodSeconds must exceed settings.enrich.shutdown_timeout_s, or Kubernetes kills the drain" -}}
{{- end -}}
{{- end -}}
