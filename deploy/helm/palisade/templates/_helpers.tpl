{{/* Names, labels and pieces every template shares. */}}

{{- define "palisade.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Kubernetes names are at most 63 characters; component suffixes need room. */}}
{{- define "palisade.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains (include "palisade.name" .) .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "palisade.name" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "palisade.selectorLabels" -}}
app.kubernetes.io/name: {{ include "palisade.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "palisade.labels" -}}
{{ include "palisade.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: palisade
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway"). */}}
{{- define "palisade.componentSelector" -}}
{{ include "palisade.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "palisade.componentLabels" -}}
{{ include "palisade.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "palisade.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "palisade.gatewayServiceName" -}}
{{- printf "%s-gateway" (include "palisade.fullname" .) -}}
{{- end -}}

{{/* The gateway URL agents and audit watchers use: the value given, else this release's. */}}
{{- define "palisade.gatewayUrl" -}}
{{- $given := .given -}}
{{- if $given -}}
{{- $given -}}
{{- else if .root.Values.controlPlane.enabled -}}
{{- printf "http://%s.%s.svc:%v" (include "palisade.gatewayServiceName" .root) .root.Release.Namespace .root.Values.ports.grpc -}}
{{- else -}}
{{- fail (printf "%s: no gateway to report to: set enrollment.secretName, or %s.server (and %s.token), or controlPlane.enabled=true" .component .component .component) -}}
{{- end -}}
{{- end -}}

{{- define "palisade.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "palisade.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end -}}

{{/* Environment shared by every component. */}}
{{- define "palisade.logEnv" -}}
- name: PALISADE_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
- name: PALISADE_LOG_LEVEL
  value: {{ .Values.log.level | quote }}
{{- end -}}

{{/* Volume mounts of secretMounts: (list of {name, secretName, mountPath}). */}}
{{- define "palisade.secretVolumeMounts" -}}
{{- range . }}
- name: {{ printf "secret-%s" .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "palisade.secretVolumes" -}}
{{- range . }}
- name: {{ printf "secret-%s" .name }}
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* Probes of a Palisade server: gRPC health for start and readiness, /healthz for liveness. */}}
{{- define "palisade.serverProbes" -}}
startupProbe:
  grpc:
    port: {{ .Values.ports.grpc }}
  periodSeconds: 5
  failureThreshold: 60
readinessProbe:
  grpc:
    port: {{ .Values.ports.grpc }}
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{- define "palisade.serverPorts" -}}
- name: grpc
  containerPort: {{ .Values.ports.grpc }}
  protocol: TCP
- name: http
  containerPort: {{ .Values.ports.http }}
  protocol: TCP
{{- end -}}

{{/* The enrollment bundle: volume, mount and flag, when enrollment.secretName is set. */}}
{{- define "palisade.enrollmentVolume" -}}
{{- if .Values.enrollment.secretName }}
- name: enrollment
  secret:
    secretName: {{ .Values.enrollment.secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "palisade.enrollmentMount" -}}
{{- if .Values.enrollment.secretName }}
- name: enrollment
  mountPath: {{ .Values.enrollment.mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "palisade.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- printf "%s-%s" (include "palisade.fullname" .root) .component -}}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{/* A checksum of the configuration, so a changed file rolls the pods that read it. */}}
{{- define "palisade.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/config.yaml") . | sha256sum }}
{{- end -}}
