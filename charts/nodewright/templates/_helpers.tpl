{{/*
Names. Namespaced objects are "<release>-bridge". Objects that are cluster-scoped, or that live in the
legacy namespace (which several releases may share), also carry the release namespace, so that two
releases of the same name in different namespaces do not overwrite each other's RBAC.
*/}}
{{- define "nodewright.bridge.name" -}}
{{- printf "%s-bridge" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nodewright.bridge.sharedName" -}}
{{- printf "%s-%s-bridge" .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "nodewright.clusterName" -}}
{{- default .Release.Name .Values.clusterName -}}
{{- end -}}

{{/* Labels every object carries; the selector labels below add the instance. */}}
{{- define "nodewright.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: nodewright
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "nodewright.bridge.selectorLabels" -}}
app.kubernetes.io/name: nodewright
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: bridge
{{- end -}}

{{- define "nodewright.bridge.labels" -}}
{{ include "nodewright.labels" . }}
{{ include "nodewright.bridge.selectorLabels" . }}
{{- end -}}

{{/* The operator: "<release>-operator"; shared (cluster-scoped or legacy-namespace) objects also
carry the release namespace, as the bridge's do. */}}
{{- define "nodewright.operator.name" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nodewright.operator.sharedName" -}}
{{- printf "%s-%s-operator" .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "nodewright.operator.selectorLabels" -}}
app.kubernetes.io/name: nodewright
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "nodewright.operator.labels" -}}
{{ include "nodewright.labels" . }}
{{ include "nodewright.operator.selectorLabels" . }}
{{- end -}}

{{/* The node agent: "<release>-agent"; its admission policy is cluster-scoped. */}}
{{- define "nodewright.agent.name" -}}
{{- printf "%s-agent" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nodewright.agent.sharedName" -}}
{{- printf "%s-%s-agent" .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "nodewright.agent.selectorLabels" -}}
app.kubernetes.io/name: nodewright
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "nodewright.agent.labels" -}}
{{ include "nodewright.labels" . }}
{{ include "nodewright.agent.selectorLabels" . }}
{{- end -}}

{{/* The user name the API server gives the operator's ServiceAccount: what the admission
policies compare request.userInfo.username with, and what the agents are told to trust. */}}
{{- define "nodewright.operator.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "nodewright.operator.name" .) -}}
{{- end -}}

{{/* The admission policies that are neither one component's nor another's (who may create
NodeTasks, what the operator may change on a Node): cluster-scoped, so named with the release
namespace too. */}}
{{- define "nodewright.admission.sharedName" -}}
{{- printf "%s-%s" .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "nodewright.admission.labels" -}}
{{ include "nodewright.labels" . }}
app.kubernetes.io/name: nodewright
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: admission
{{- end -}}

{{/* The audit trail's writer: "<release>-audit". */}}
{{- define "nodewright.audit.name" -}}
{{- printf "%s-audit" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nodewright.audit.selectorLabels" -}}
app.kubernetes.io/name: nodewright
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: audit
{{- end -}}

{{- define "nodewright.audit.labels" -}}
{{ include "nodewright.labels" . }}
{{ include "nodewright.audit.selectorLabels" . }}
{{- end -}}

{{/* The web UI: "<release>-ui"; its Role in the legacy namespace carries the release namespace. */}}
{{- define "nodewright.ui.name" -}}
{{- printf "%s-ui" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nodewright.ui.sharedName" -}}
{{- printf "%s-%s-ui" .Release.Namespace .Release.Name -}}
{{- end -}}

{{- define "nodewright.ui.selectorLabels" -}}
app.kubernetes.io/name: nodewright
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ui
{{- end -}}

{{- define "nodewright.ui.labels" -}}
{{ include "nodewright.labels" . }}
{{ include "nodewright.ui.selectorLabels" . }}
{{- end -}}

{{/* The pod security context of every component but the agent (which runs as root, and says
why): `securityContext.pod`, less the fixed user and group IDs when `securityContext.openshift`
is on, since OpenShift's restricted SCC assigns each namespace its own UID range and refuses a pod
that names a UID outside it. */}}
{{- define "nodewright.podSecurityContext" -}}
{{- $ctx := deepCopy .Values.securityContext.pod -}}
{{- if .Values.securityContext.openshift -}}
{{- $ctx = omit $ctx "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- toYaml $ctx -}}
{{- end -}}

{{/* The container security context of every component but the agent. */}}
{{- define "nodewright.containerSecurityContext" -}}
{{- $ctx := deepCopy .Values.securityContext.container -}}
{{- if .Values.securityContext.openshift -}}
{{- $ctx = omit $ctx "runAsUser" "runAsGroup" -}}
{{- end -}}
{{- toYaml $ctx -}}
{{- end -}}

{{/* The nodewright image for a component whose `image` may override the top-level one. */}}
{{- define "nodewright.image" -}}
{{- $root := index . 0 -}}
{{- $own := index . 1 | default dict -}}
{{- printf "%s:%s" ($own.repository | default $root.Values.image.repository) ($own.tag | default $root.Values.image.tag | default $root.Chart.AppVersion) -}}
{{- end -}}

{{/* A component's log options, as `nodewright` arguments: the component's `logLevel`, else the
release's `logLevel`; the release's `logFormat`. Called with (list $ .Values.<component>). */}}
{{- define "nodewright.logArgs" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
- --log-format
- {{ $root.Values.logFormat | quote }}
- --log-level
- {{ $component.logLevel | default $root.Values.logLevel | quote }}
{{- end -}}
