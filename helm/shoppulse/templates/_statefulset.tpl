{{/* The StatefulSet of a faust stage (profiles, insights): {root, component, args}.

Both stages keep a changelog-backed table in a local store (RocksDB) under
"<persistence.mountPath>/<component>", on a PVC per pod or an emptyDir, and answer lookups on
their HTTP port, forwarded by faust to the worker that owns the key. */}}
{{- define "shoppulse.faustStatefulSet" -}}
{{- $root := .root -}}
{{- $component := .component -}}
{{- $ctx := dict "root" $root "component" $component -}}
{{- $p := index $root.Values $component -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ include "shoppulse.componentName" $ctx }}
  labels:
    {{- include "shoppulse.componentLabels" $ctx | nindent 4 }}
spec:
  replicas: {{ $p.replicas }}
  serviceName: {{ include "shoppulse.componentName" $ctx }}-headless
  # Workers join the group together; the table is rebuilt from the changelog, not from peers.
  podManagementPolicy: Parallel
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "shoppulse.selectorLabels" $ctx | nindent 6 }}
  updateStrategy:
    type: RollingUpdate
  {{- if $p.persistence.enabled }}
  persistentVolumeClaimRetentionPolicy:
    # Keep local state across scale-down so a scale-up does not replay the whole changelog.
    whenDeleted: Retain
    whenScaled: Retain
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "shoppulse.selectorLabels" $ctx | nindent 8 }}
        {{- with $p.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/settings: {{ include "shoppulse.settingsEnv" $root | sha256sum }}
        {{- with $p.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "shoppulse.serviceAccountName" $root }}
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: {{ $p.terminationGracePeriodSeconds }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $p.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ $component }}
          image: {{ include "shoppulse.image" (dict "root" $root "stage" $p) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: {{ toJson .args }}
          ports:
            - name: http
              containerPort: {{ include "shoppulse.stagePort" $ctx }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "shoppulse.fullname" $root }}-settings
          env:
            # faust redirects a lookup to the worker owning the key: each pod
            # advertises its own address, not 0.0.0.0.
            - name: SHOPPULSE_{{ upper $component }}__ADVERTISED_HOST
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
            {{- with (include "shoppulse.secretEnv" $root) }}{{ . | trim | nindent 12 }}{{- end }}
            {{- with $p.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          # Liveness and readiness start once this passes: the changelog recovery may take
          # minutes without the pod being restarted for it.
          startupProbe:
            httpGet:
              path: /readyz
              port: http
            {{- toYaml $p.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml $p.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            {{- toYaml $p.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $p.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: data
              mountPath: {{ $p.persistence.mountPath }}
            {{- with (include "shoppulse.tlsVolumeMount" $root) }}{{ . | trim | nindent 12 }}{{ end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- if not $p.persistence.enabled }}
        - name: data
          emptyDir: {}
        {{- end }}
        {{- with (include "shoppulse.tlsVolume" $root) }}{{ . | trim | nindent 8 }}{{ end }}
      {{- with (include "shoppulse.topologySpread" $ctx) }}{{ . | trim | nindent 6 }}{{ end }}
      {{- with $p.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $p.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $p.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- if $p.persistence.enabled }}
  volumeClaimTemplates:
    - metadata:
        name: data
        labels:
          {{- include "shoppulse.selectorLabels" $ctx | nindent 10 }}
      spec:
        accessModes:
          {{- toYaml $p.persistence.accessModes | nindent 10 }}
        {{- with $p.persistence.storageClassName }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $p.persistence.size }}
  {{- end }}
{{- end -}}
