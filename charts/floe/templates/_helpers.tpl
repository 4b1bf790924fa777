{{/* The chart's name. */}}
{{- define "floe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: <release>-floe unless the release name holds the chart's. */}}
{{- define "floe.fullname" -}}
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

{{/* The worker Deployment's name: ends in -connect, as the pods Strimzi's alerts match. */}}
{{- define "floe.workers" -}}
{{- printf "%s-connect" (include "floe.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "floe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "floe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "floe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "floe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "floe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "floe.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "floe.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Connect group and its internal topics. */}}
{{- define "floe.groupId" -}}
{{- default (include "floe.fullname" .) .Values.groupId -}}
{{- end -}}

{{/* A worker property's CONNECT_* variable (the Confluent image's convention). */}}
{{- define "floe.envName" -}}
{{- printf "CONNECT_%s" (. | replace "_" "__" | replace "-" "___" | replace "." "_" | upper) -}}
{{- end -}}

{{/* A value as a string; whole numbers YAML read as floats keep their digits. */}}
{{- define "floe.string" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) -}}
{{- int64 . | toString -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* Every worker property the chart sets: derived ones, overridden by workerConfig. */}}
{{- define "floe.workerProperties" -}}
{{- $group := include "floe.groupId" . -}}
{{- $rf := include "floe.string" .Values.kafka.replicationFactor -}}
{{- $props := dict
  "bootstrap.servers" (required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers)
  "group.id" $group
  "config.storage.topic" (default (printf "%s-configs" $group) .Values.topics.config)
  "offset.storage.topic" (default (printf "%s-offsets" $group) .Values.topics.offset)
  "status.storage.topic" (default (printf "%s-status" $group) .Values.topics.status)
  "config.storage.replication.factor" $rf
  "offset.storage.replication.factor" $rf
  "status.storage.replication.factor" $rf
  "listeners" (printf "http://0.0.0.0:%d" (int .Values.service.port))
  "rest.advertised.port" (printf "%d" (int .Values.service.port))
-}}
{{- range $k, $v := .Values.workerConfig -}}
{{- $_ := set $props $k (include "floe.string" $v) -}}
{{- end -}}
{{- toYaml $props -}}
{{- end -}}

{{/* The labels Strimzi's Kafka Connect dashboard and alerts select on. */}}
{{- define "floe.dashboardRelabelings" -}}
- sourceLabels: [__meta_kubernetes_namespace]
  targetLabel: namespace
- sourceLabels: [__meta_kubernetes_pod_name]
  targetLabel: pod
- targetLabel: strimzi_io_kind
  replacement: KafkaConnect
- targetLabel: strimzi_io_cluster
  replacement: {{ include "floe.fullname" . }}
{{- end -}}
