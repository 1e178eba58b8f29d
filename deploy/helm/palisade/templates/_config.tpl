{{/* The configuration file of a control-plane pod: (dict "root" $ "service" NAME), NAME empty
for the embedded server (`palisade up`), else the distributed service (`palisade serve NAME`).
The files of the distributed mode differ only in [tls] and in the gateway's agent listener and
[enrollment], so one template writes them all. */}}
{{- define "palisade.configFile" -}}
{{- $root := .root -}}
{{- $service := .service -}}
{{- $values := $root.Values -}}
{{- $fullname := include "palisade.fullname" $root -}}
{{- $gateway := include "palisade.gatewayServiceName" $root -}}
{{- $namespace := $root.Release.Namespace -}}
{{- $agentListener := or (not $service) (eq $service "gateway") -}}
{{- /* search, graph and scanner, and the distributed gateway unless the user gave its
certificate or turned TLS off, serve the chart's internal certificate. */ -}}
{{- $internalCertificate := and $service (or (ne $service "gateway") (eq $values.tls.mode "self-signed")) -}}
{{- $internalTls := include "palisade.internalTlsDir" $root -}}
# Written by the chart{{ if $service }} for `palisade serve {{ $service }}`{{ end }}: where the pod keeps its data and what it listens on.
data_dir = "/var/lib/palisade"
grpc_listen = "{{ $values.listenAddress }}:{{ $values.ports.grpc }}"
http_listen = "{{ $values.listenAddress }}:{{ $values.ports.http }}"
{{- if $agentListener }}
agent_listen = "{{ $values.listenAddress }}:{{ $values.ports.agent }}"
{{- end }}

[tls]
{{- if $internalCertificate }}
# The chart's internal certificate (Secret {{ $fullname }}-internal-tls): it names the Service of every service of this release.
mode = "files"
cert_file = "{{ $internalTls }}/tls.crt"
key_file = "{{ $internalTls }}/tls.key"
{{- else }}
mode = {{ $values.tls.mode | quote }}
{{- if eq $values.tls.mode "files" }}
cert_file = "/etc/palisade/tls/tls.crt"
key_file = "/etc/palisade/tls/tls.key"
{{- end }}
# The names clients use: the gateway Service in and beyond this namespace.
server_names = {{ concat (include "palisade.serviceDnsNames" (dict "name" $gateway "namespace" $namespace) | fromJsonArray) $values.tls.serverNames | toJson }}
{{- end }}
{{- if $agentListener }}

[enrollment]
agent_url = {{ default (printf "https://%s.%s.svc:%v" $gateway $namespace $values.ports.agent) $values.enrollment.agentUrl | quote }}
server_names = {{ list $gateway (printf "%s.%s.svc" $gateway $namespace) | toJson }}
{{- end }}
{{- if $service }}

[peers]
# This release's Services; the internal certificate names each of them.
gateway = "{{ ternary "http" "https" (eq $values.tls.mode "off") }}://{{ $gateway }}.{{ $namespace }}.svc:{{ $values.ports.grpc }}"
{{- range $peer := list "search" "graph" "scanner" }}
{{ $peer }} = "https://{{ $fullname }}-{{ $peer }}.{{ $namespace }}.svc:{{ $values.ports.grpc }}"
{{- end }}
# Secret {{ $fullname }}-service-token: the credential the services present to each other.
service_token_file = "{{ include "palisade.serviceTokenFile" $root }}"
# The internal CA{{ if eq $values.tls.mode "files" }}, and tls.caCertificate for the gateway's own certificate{{ end }}.
ca_file = "{{ $internalTls }}/ca-bundle.crt"
{{- end }}
{{- with $values.config }}

# From the release's values (config).
{{ . | trim }}
{{- end }}
{{- if and $service $values.distributedConfig }}

# From the release's values (distributedConfig).
{{ tpl $values.distributedConfig $root | trim }}
{{- end }}
{{- end -}}
