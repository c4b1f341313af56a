{{/* Chart name, release-scoped names, labels. */}}
{{- define "pek.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pek.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pek
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "pek.hubSelector" -}}
app.kubernetes.io/name: pek-hub
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pek.operatorSelector" -}}
app.kubernetes.io/name: pek-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pek.postgresSelector" -}}
app.kubernetes.io/name: pek-postgres
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pek.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "pek.hubUrl" -}}
http://{{ include "pek.fullname" . }}.{{ .Release.Namespace }}.svc:{{ .Values.hub.service.port }}
{{- end -}}

{{/* Secret names (existing ones win). */}}
{{- define "pek.tokenSecret" -}}
{{- .Values.operator.token.existingSecret | default (printf "%s-operator-token" (include "pek.fullname" .)) -}}
{{- end -}}
{{- define "pek.jwtSecret" -}}
{{- .Values.hub.jwt.existingSecret | default (printf "%s-jwt" (include "pek.fullname" .)) -}}
{{- end -}}
{{- define "pek.hubDbSecret" -}}
{{- .Values.hub.database.existingSecret | default (printf "%s-hub-db" (include "pek.fullname" .)) -}}
{{- end -}}
{{- define "pek.adminSecret" -}}
{{- .Values.postgresAdmin.existingSecret | default (printf "%s-postgres-admin" (include "pek.fullname" .)) -}}
{{- end -}}
{{- define "pek.federationSecret" -}}
{{- .Values.federation.existingSecret | default (printf "%s-federation" (include "pek.fullname" .)) -}}
{{- end -}}
{{- define "pek.redisSecret" -}}
{{- .Values.hub.redis.existingSecret | default (printf "%s-redis" (include "pek.fullname" .)) -}}
{{- end -}}
{{- define "pek.redisSecretKey" -}}
{{- if .Values.hub.redis.existingSecret -}}{{ .Values.hub.redis.existingSecretKey | default "url" }}{{- else -}}url{{- end -}}
{{- end -}}
{{- define "pek.redisEnabled" -}}
{{- if or .Values.hub.redis.existingSecret .Values.hub.redis.url -}}true{{- end -}}
{{- end -}}
{{- define "pek.postgresHost" -}}
{{ include "pek.fullname" . }}-postgres.{{ .Release.Namespace }}.svc
{{- end -}}

{{/*
A value kept across upgrades: the existing Secret's key if the Secret exists, else a new
random one. Usage: include "pek.keep" (dict "ctx" . "secret" NAME "key" KEY "len" 32)
*/}}
{{- define "pek.keep" -}}
{{- $s := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $s $s.data (hasKey $s.data .key) -}}
{{- index $s.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (int .len) -}}
{{- end -}}
{{- end -}}

{{/* The sign-in provider registry as the hub reads it (PEK_LOGIN_PROVIDERS): each
     provider's clientSecret Secret becomes the file it is mounted as. */}}
{{- define "pek.loginProviders" -}}
{{- $out := list -}}
{{- range $prov := .Values.hub.login.providers -}}
{{- $p := omit $prov "clientSecret" -}}
{{- with $prov.clientSecret -}}
{{- $p = set $p "clientSecretFile" (printf "/etc/pek/login/%s/%s" $prov.id (.key | default "secret")) -}}
{{- end -}}
{{- $out = append $out $p -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
