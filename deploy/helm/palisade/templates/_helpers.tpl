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
{{- $scheme := ternary "http" "https" (eq .root.Values.tls.mode "off") -}}
{{- printf "%s://%s.%s.svc:%v" $scheme (include "palisade.gatewayServiceName" .root) .root.Release.Namespace .root.Values.ports.grpc -}}
{{- else -}}
{{- fail (printf "%s: no gateway to report to: set %s.server (and %s.token), or controlPlane.enabled=true%s" .component .component .component (ternary ", or enrollment.secretName" "" (eq .component "agent"))) -}}
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

{{/* Probes of a Palisade server: /healthz on the HTTP listener, over HTTPS unless TLS is off
(the kubelet does not verify probe certificates; its gRPC probes cannot speak TLS at all). The
listeners open once the platform has started, so the first success means started and ready.
(dict "plainText" BOOL): whether the listener speaks plain HTTP. */}}
{{- define "palisade.serverProbes" -}}
{{- $scheme := ternary "HTTP" "HTTPS" .plainText -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
    scheme: {{ $scheme }}
  periodSeconds: 5
  failureThreshold: 60
readinessProbe:
  httpGet:
    path: /healthz
    port: http
    scheme: {{ $scheme }}
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /healthz
    port: http
    scheme: {{ $scheme }}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* (dict "root" $ "agentListener" BOOL): only the gateway (and the embedded server) has the
agent listener. */}}
{{- define "palisade.serverPorts" -}}
- name: grpc
  containerPort: {{ .root.Values.ports.grpc }}
  protocol: TCP
- name: http
  containerPort: {{ .root.Values.ports.http }}
  protocol: TCP
{{- if .agentListener }}
- name: agent
  containerPort: {{ .root.Values.ports.agent }}
  protocol: TCP
{{- end }}
{{- end -}}

{{/* The certificate and key of tls.mode files, for the server pods. */}}
{{- define "palisade.tlsVolumeMount" -}}
{{- if eq .Values.tls.mode "files" }}
- name: tls
  mountPath: /etc/palisade/tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "palisade.tlsVolume" -}}
{{- if eq .Values.tls.mode "files" }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* The gateway's CA for token clients (gatewayCA.secretName): volume, mount, flag. */}}
{{- define "palisade.gatewayCAVolume" -}}
{{- if .Values.gatewayCA.secretName }}
- name: gateway-ca
  secret:
    secretName: {{ .Values.gatewayCA.secretName }}
    defaultMode: 0444
{{- end }}
{{- end -}}

{{- define "palisade.gatewayCAMount" -}}
{{- if .Values.gatewayCA.secretName }}
- name: gateway-ca
  mountPath: /etc/palisade/gateway-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* The cluster's credential directory (enrollment.secretName), for the agents. */}}
{{- define "palisade.enrollmentVolume" -}}
{{- if .Values.enrollment.secretName }}
- name: credentials
  secret:
    secretName: {{ .Values.enrollment.secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "palisade.enrollmentMount" -}}
{{- if .Values.enrollment.secretName }}
- name: credentials
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

{{/* The services of the distributed mode, each a StatefulSet running `palisade serve NAME`.
The audit watcher is not among them: auditWatcher renders the one watcher of the cluster. */}}
{{- define "palisade.distributedServices" -}}
{{- list "gateway" "search" "graph" "scanner" | toJson -}}
{{- end -}}

{{/* The in-cluster DNS names of a Service: short, .NS, .NS.svc, .NS.svc.cluster.local. */}}
{{- define "palisade.serviceDnsNames" -}}
{{- $name := .name -}}
{{- $namespace := .namespace -}}
{{- list $name (printf "%s.%s" $name $namespace) (printf "%s.%s.svc" $name $namespace) (printf "%s.%s.svc.cluster.local" $name $namespace) | toJson -}}
{{- end -}}

{{/* Where the chart's internal TLS Secret (certificate, key, CA bundle) and the service token
are mounted in the distributed mode's pods; the configuration files name these paths. */}}
{{- define "palisade.internalTlsDir" -}}/etc/palisade/internal-tls{{- end -}}
{{- define "palisade.serviceTokenFile" -}}/etc/palisade/service-token/token{{- end -}}

{{/* Whether the distributed gateway's gRPC and HTTP listeners speak plain text (tls.mode off);
the other services always speak TLS with the internal certificate. */}}
{{- define "palisade.listenerPlainText" -}}
{{- if and (eq .service "gateway") (eq .root.Values.tls.mode "off") -}}true{{- end -}}
{{- end -}}

{{/* A checksum of the configuration, so a changed file rolls the pods that read it. */}}
{{- define "palisade.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/config.yaml") . | sha256sum }}
{{- end -}}
