{{/* Name of the release's objects; a role's objects add "-ROLE". */}}
{{- define "multijuego.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The roles this release runs, one Deployment each. */}}
{{- define "multijuego.roles" -}}
{{- if eq .Values.mode "embedded" -}}
all
{{- else if eq .Values.mode "split" -}}
gateway auth game persistence
{{- else -}}
{{- fail (printf "mode must be embedded or split, got %q" .Values.mode) -}}
{{- end -}}
{{- end -}}

{{- define "multijuego.selectorLabels" -}}
app.kubernetes.io/name: multijuego
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "multijuego.labels" -}}
{{ include "multijuego.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* The public role: the gateway, or the embedded pod. */}}
{{- define "multijuego.publicRole" -}}
{{- if eq .Values.mode "embedded" }}all{{ else }}gateway{{ end -}}
{{- end -}}

{{/*
Seconds a pod gets from SIGTERM to SIGKILL: the preStop sleep, then the
longest the process may take to drain. Every role's HTTP server gets
gateway.drain_timeout; a game node (game, all) waits up to
shutdown_grace+5s for its matches to be handed over, up to
shutdown_grace+5s more for the rest to end, and 5 s to flush their
results (internal/app/game.go). 5 s of margin on top.
*/}}
{{- define "multijuego.gracePeriod" -}}
{{- $d := .root.Values.drain -}}
{{- $stop := int $d.timeoutSeconds -}}
{{- if or (eq .role "game") (eq .role "all") -}}
{{- $game := add (mul 2 (add $d.gameShutdownGraceSeconds 5)) 5 -}}
{{- $stop = max $stop $game -}}
{{- end -}}
{{- add $d.preStopSleepSeconds $stop 5 -}}
{{- end -}}

{{/* The roles that use each external service (internal/app/config.go, roleNeeds). */}}
{{- define "multijuego.usesDatabase" -}}{{ has .role (list "gateway" "auth" "persistence") }}{{- end -}}
{{- define "multijuego.usesNATS" -}}{{ has .role (list "gateway" "game" "persistence") }}{{- end -}}
{{- define "multijuego.signsEvents" -}}{{ has .role (list "game" "persistence") }}{{- end -}}

{{/* A URL from the values in the clear, or from a key of an existing Secret. */}}
{{- define "multijuego.urlEnv" -}}
- name: {{ .name }}
{{- if .svc.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .svc.existingSecret }}
      key: {{ .svc.secretKey }}
{{- else if .svc.url }}
  value: {{ .svc.url | quote }}
{{- else }}
{{- fail (printf "%s: set its url or existingSecret (mode split)" .what) }}
{{- end }}
{{- end -}}

{{/* Every container: no root, nothing written outside its volumes, no capabilities. */}}
{{- define "multijuego.containerSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.user }}
runAsGroup: {{ .Values.podSecurity.group }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
