{{/* The name of the chart's objects: the release name, plus the chart name unless it contains it. */}}
{{- define "recording-storage.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels every object has. */}}
{{- define "recording-storage.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The labels that select the pods of one group; call with (dict "root" $ "group" $group). */}}
{{- define "recording-storage.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .group.name }}
{{- end -}}

{{/* The name of one group's objects; call with (dict "root" $ "group" $group). */}}
{{- define "recording-storage.groupName" -}}
{{- printf "%s-%s" (include "recording-storage.fullname" .root) .group.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The topology (recording-storage topology --json): .Values.topology, else files/topology.json. */}}
{{- define "recording-storage.topology" -}}
{{- if .Values.topology -}}
{{- toJson .Values.topology -}}
{{- else -}}
{{- .Files.Get "files/topology.json" -}}
{{- end -}}
{{- end -}}

{{/*
What one group's stages read and need, as JSON: {"queues": [{"name", "url"}...], "needs": {"instances": true, ...}}.
Fails on a stage the topology does not know. Call with (dict "root" $ "group" $group).
*/}}
{{- define "recording-storage.groupIO" -}}
{{- $topo := include "recording-storage.topology" .root | fromJson -}}
{{- $queues := list -}}
{{- $needs := dict -}}
{{- range $stage := .group.stages -}}
{{- $found := false -}}
{{- range $io := $topo.stages -}}
{{- if eq $io.stage $stage -}}
{{- $found = true -}}
{{- range $name := $io.queues -}}
{{- range $q := $topo.queues -}}
{{- if eq $q.name $name -}}
{{- $queues = append $queues (dict "name" $q.name "url" ($q.url | default "")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $n := $io.needs -}}
{{- $_ := set $needs $n true -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "groups: group %s names stage %q, which is not one of the service's stages" $.group.name $stage) -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "queues" $queues "needs" $needs) -}}
{{- end -}}

{{/* Where the configuration and the instance file are mounted. */}}
{{- define "recording-storage.configDir" -}}/etc/recording-storage/config{{- end -}}
{{- define "recording-storage.instancesDir" -}}/etc/recording-storage/instances{{- end -}}

{{/*
The service's configuration file: .Values.config with what the chart sets itself (the instance
file's path, s3.memory_budget, stages.drain_timeout). http.listen is
set by RS_HTTP_LISTEN (see the Deployment), which overrides the image's own.
*/}}
{{- define "recording-storage.config" -}}
{{- $set := dict
  "instances" (dict "file" (printf "%s/instances.yaml" (include "recording-storage.instancesDir" .)))
  "s3" (dict "memory_budget" (printf "%vMiB" .Values.memoryBudgetMiB))
  "stages" (dict "drain_timeout" .Values.drainTimeout) -}}
{{- toYaml (mergeOverwrite (deepCopy .Values.config) $set) -}}
{{- end -}}

{{/* The name of the Secret with instances.yaml. */}}
{{- define "recording-storage.instancesSecret" -}}
{{- .Values.instances.existingSecret | default (printf "%s-instances" (include "recording-storage.fullname" .)) -}}
{{- end -}}
