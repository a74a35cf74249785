// Validates custom resources against the schemas of their CRDs, offline.
// Why: kubernetes-validate knows the built-in kinds only. The npm packages @kubernetes-models/
// prometheus-operator and @kubernetes-models/keda carry validators generated from the upstream
// CRDs (installed into .cache/npm by scripts/install-tools.sh). Run from that folder, the script
// on stdin: `node --input-type=module - manifests.json < validate_crds.mjs`.
// Prints one JSON line: [{kind, name, errors}] with errors null when the object is valid.
import { readFileSync } from "node:fs";

const monitoring = await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1");
const keda = await import("@kubernetes-models/keda/keda.sh/v1alpha1");
const models = {
  "monitoring.coreos.com/v1/ServiceMonitor": monitoring.ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": monitoring.PrometheusRule,
  "keda.sh/v1alpha1/ScaledObject": keda.ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": keda.TriggerAuthentication,
};

const manifests = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = manifests.map((m) => {
  const Model = models[`${m.apiVersion}/${m.kind}`];
  const name = m.metadata?.name;
  if (!Model) return { kind: m.kind, name, errors: `no schema for ${m.apiVersion} ${m.kind}` };
  try {
    new Model(m).validate();
    return { kind: m.kind, name, errors: null };
  } catch (err) {
    return { kind: m.kind, name, errors: String(err.message ?? err) };
  }
});
console.log(JSON.stringify(results));
