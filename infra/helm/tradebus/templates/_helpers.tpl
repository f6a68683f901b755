{{/* Names ---------------------------------------------------------------- */}}

{{- define "tradebus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tradebus.fullname" -}}
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

{{/* A producer StatefulSet's name: "<fullname>-<kind>-<instance>". The
     controller-revision-hash label ("<name>-<hash>") must fit 63 characters. */}}
{{- define "tradebus.producerName" -}}
{{- $name := printf "%s-%s-%s" (include "tradebus.fullname" .root) .kind .instance.name -}}
{{- if gt (len $name) 52 -}}
{{- fail (printf "producer StatefulSet name %q is longer than 52 characters: shorten the instance name, the release name or fullnameOverride" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "tradebus.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tradebus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tradebus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tradebus.labels" -}}
helm.sh/chart: {{ include "tradebus.chart" . }}
{{ include "tradebus.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tradebus
{{- end -}}

{{- define "tradebus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tradebus.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The shared Secret (Kafka SASL password, registry credentials, database URL, alert sinks). */}}
{{- define "tradebus.secretName" -}}
{{- default (include "tradebus.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "tradebus.metricsServiceName" -}}
{{- printf "%s-metrics" (include "tradebus.fullname" .) -}}
{{- end -}}

{{- define "tradebus.alertsConfigMapName" -}}
{{- default (printf "%s-alerts" (include "tradebus.fullname" .)) .Values.workers.alerts.existingConfigMap -}}
{{- end -}}

{{- define "tradebus.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "tradebus.terminationGracePeriodSeconds" -}}
{{- add (int .Values.shutdownTimeoutSeconds) (int .Values.terminationGraceMarginSeconds) -}}
{{- end -}}

{{/* Environment ---------------------------------------------------------- */}}

{{/* Variables every tradebus process reads (docs/CONVENTIONS.md). */}}
{{- define "tradebus.commonEnv" -}}
- name: TRADEBUS_KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
{{- with .Values.kafka.securityProtocol }}
- name: TRADEBUS_KAFKA_SECURITY_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.sasl.mechanism }}
- name: TRADEBUS_KAFKA_SASL_MECHANISM
  value: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.sasl.username }}
- name: TRADEBUS_KAFKA_SASL_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
- name: TRADEBUS_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "tradebus.secretName" . }}
      key: kafka-sasl-password
{{- end }}
{{- if .Values.kafka.ssl.caSecret }}
- name: TRADEBUS_KAFKA_SSL_CA_LOCATION
  value: {{ printf "/etc/tradebus/kafka-ca/%s" .Values.kafka.ssl.caSecretKey | quote }}
{{- end }}
- name: TRADEBUS_SCHEMA_REGISTRY_URL
  value: {{ .Values.schemaRegistry.url | quote }}
{{- if .Values.schemaRegistry.basicAuth }}
- name: TRADEBUS_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO
  valueFrom:
    secretKeyRef:
      name: {{ include "tradebus.secretName" . }}
      key: schema-registry-user-info
{{- end }}
{{- with .Values.topicPrefix }}
- name: TRADEBUS_TOPIC_PREFIX
  value: {{ . | quote }}
{{- end }}
- name: TRADEBUS_LOG_LEVEL
  value: {{ .Values.log.level | quote }}
- name: TRADEBUS_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
- name: TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS
  value: {{ .Values.shutdownTimeoutSeconds | quote }}
{{- end -}}

{{/* Pod pieces ------------------------------------------------------------ */}}

{{- define "tradebus.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tradebus.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Scheduling and identity shared by every pod (the topics Job included). */}}
{{- define "tradebus.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "tradebus.podSecurityContext" . | nindent 2 }}
{{- end -}}

{{/* The long-running container's port and probes. */}}
{{- define "tradebus.portAndProbes" -}}
ports:
  - name: http-metrics
    containerPort: {{ .Values.httpPort }}
    protocol: TCP
# Liveness and startup: /healthz only says the process is alive; an upstream
# or Kafka outage shows in /readyz and never restarts the pod.
startupProbe:
  httpGet: {path: /healthz, port: http-metrics}
  {{- toYaml .Values.probes.startup | nindent 2 }}
livenessProbe:
  httpGet: {path: /healthz, port: http-metrics}
  {{- toYaml .Values.probes.liveness | nindent 2 }}
readinessProbe:
  httpGet: {path: /readyz, port: http-metrics}
  {{- toYaml .Values.probes.readiness | nindent 2 }}
{{- end -}}

{{/* Volumes every pod gets: /tmp (the only writable path) and the Kafka CA. */}}
{{- define "tradebus.baseVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.kafka.ssl.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.ssl.caSecret }}
    defaultMode: 0444
    items:
      - key: {{ .Values.kafka.ssl.caSecretKey }}
        path: {{ .Values.kafka.ssl.caSecretKey }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tradebus.baseVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.ssl.caSecret }}
- name: kafka-ca
  mountPath: /etc/tradebus/kafka-ca
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod template metadata of a long-running component.
     Call with (dict "root" $ "component" "dedup" "extraLabels" (dict ...) "annotations" (dict ...)). */}}
{{- define "tradebus.podMetadata" -}}
labels:
  {{- include "tradebus.labels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  tradebus.io/metrics: "true"
  {{- with .extraLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  kubectl.kubernetes.io/default-container: tradebus
  {{- with .annotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
