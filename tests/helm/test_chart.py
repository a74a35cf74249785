"""The Helm chart, checked offline with the real tools: helm lint/template and the Kubernetes schemas.

Every documented scenario (defaults + helm/shoppulse/ci/*-values.yaml) must lint, render, pass
strict schema validation for built-in kinds, and render env vars that the settings object
actually reads, with values that agree with the ports, volumes and Secrets the pods get.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shoppulse.consumers.settings import KAFKA_OPT_PREFIX, Settings, env_var_names, kafka_opts_from_env
from tests.helm.chart import (
    CHART,
    ROOT,
    SCENARIOS,
    Manifest,
    Render,
    by_kind,
    load_values,
    one,
    pod_specs,
    run_helm,
    value_args,
)

K8S_VERSION = "1.30.0"
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}
# Settings the pods cannot run without, whatever the values say.
REQUIRED_ENV = {
    "SHOPPULSE_KAFKA__BOOTSTRAP_SERVERS",
    "SHOPPULSE_HTTP__HOST",
    "SHOPPULSE_HTTP__ENRICH_PORT",
    "SHOPPULSE_HTTP__PROFILES_PORT",
    "SHOPPULSE_HTTP__INSIGHTS_PORT",
    "SHOPPULSE_PROFILES__DATA_DIR",
    "SHOPPULSE_INSIGHTS__DATA_DIR",
}
# The stream stages the chart runs, by workload kind; the faust ones keep a table on a volume.
STAGES = {"enrich": "Deployment", "profiles": "StatefulSet", "insights": "StatefulSet"}
FAUST_STAGES = [name for name, kind in STAGES.items() if kind == "StatefulSet"]
SECRET_PLACEHOLDER = "from-secret"
FIELD_PLACEHOLDERS = {"status.podIP": "10.1.2.3"}

scenario_ids = list(SCENARIOS)


@pytest.fixture(params=scenario_ids)
def scenario(request: pytest.FixtureRequest) -> tuple[str, list[Path]]:
    return request.param, SCENARIOS[request.param]


@pytest.fixture
def manifests(render: Render, scenario: tuple[str, list[Path]]) -> list[Manifest]:
    return render(scenario[1])


def settings_configmap(manifests: list[Manifest]) -> dict[str, str]:
    return one(manifests, "ConfigMap", "-settings")["data"]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod_spec["containers"] if c["name"] == name)


def pod_environ(manifests: list[Manifest], pod_spec: dict[str, Any], main: dict[str, Any]) -> dict[str, str]:
    """The environment a container would see: envFrom ConfigMaps, then env (Secrets as placeholders)."""
    configmaps = {m["metadata"]["name"]: m["data"] for m in by_kind(manifests, "ConfigMap")}
    environ: dict[str, str] = {}
    for source in main.get("envFrom", []):
        environ.update(configmaps[source["configMapRef"]["name"]])
    for var in main.get("env", []):
        if "value" in var:
            environ[var["name"]] = var["value"]
        elif "fieldRef" in var["valueFrom"]:
            environ[var["name"]] = FIELD_PLACEHOLDERS[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            assert "secretKeyRef" in var["valueFrom"], var
            environ[var["name"]] = SECRET_PLACEHOLDER
    return environ


def settings_from(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.upper().startswith("SHOPPULSE_"):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return Settings()


def mounts(main: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in main.get("volumeMounts", [])}


# --- the tools -------------------------------------------------------------


@pytest.mark.parametrize("name", scenario_ids)
def test_helm_lint_strict(helm: str, name: str) -> None:
    proc = run_helm(helm, "lint", "--strict", str(CHART), *value_args(SCENARIOS[name]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


def test_builtin_kinds_pass_strict_schema_validation(manifests: list[Manifest]) -> None:
    kinds = set()
    for manifest in manifests:
        kinds.add(manifest["kind"])
        if manifest["kind"] in CUSTOM_KINDS:
            continue  # not in kubernetes-validate: their CRD schemas are checked below
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    assert {"Deployment", "StatefulSet", "ConfigMap", "Service", "PodDisruptionBudget"} <= kinds


def test_every_stage_runs_as_its_own_workload(manifests: list[Manifest]) -> None:
    for name, kind in STAGES.items():
        workload = one(manifests, kind, f"-{name}")
        (main,) = workload["spec"]["template"]["spec"]["containers"]
        assert main["name"] == name and main["args"] == ["run", name]


@pytest.fixture(scope="module")
def validate_crds() -> typing.Callable[[list[Manifest]], list[dict[str, Any]]]:
    """Validate custom resources with the CRD validators install-tools.sh puts in .cache/npm (node)."""
    import shutil
    import subprocess
    import tempfile

    from tests.conftest import require

    npm_dir = ROOT / ".cache" / "npm"
    node = shutil.which("node")
    installed = (npm_dir / "node_modules" / "@kubernetes-models" / "keda").is_dir()
    require(node is not None and installed, "node and the CRD validators", "run scripts/install-tools.sh (make tools)")
    script = (Path(__file__).parent / "validate_crds.mjs").read_text(encoding="utf-8")

    def run(objects: list[Manifest]) -> list[dict[str, Any]]:
        with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as handle:
            json.dump(objects, handle)
            handle.flush()
            proc = subprocess.run(
                [str(node), "--input-type=module", "-", handle.name],
                input=script, cwd=npm_dir, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    return run


def test_custom_resources_pass_their_crd_schemas(render: Render, validate_crds: Any) -> None:
    """ServiceMonitor, PrometheusRule, ScaledObject, TriggerAuthentication of every scenario.

    A TriggerAuthentication needs KEDA and Kafka credentials together: the SASL scenario with KEDA on.
    """
    renders = [render(SCENARIOS[name]) for name in scenario_ids]
    renders.append(render(SCENARIOS["external-kafka-sasl"], ["enrich.keda.enabled=true"]))
    objects = [m for manifests in renders for m in manifests if m["kind"] in CUSTOM_KINDS]
    assert {m["kind"] for m in objects} == CUSTOM_KINDS  # every custom kind is rendered by some scenario
    invalid = [r for r in validate_crds(objects) if r["errors"] is not None]
    assert invalid == [], invalid


def test_crd_validation_catches_a_wrong_type(render: Render, validate_crds: Any) -> None:
    """Guards the test above: the validators really check the CRD schemas."""
    rule = json.loads(json.dumps(one(render(), "PrometheusRule")))
    rule["spec"]["groups"][0]["rules"][0]["for"] = 300  # a duration is a string ("5m")
    [result] = validate_crds([rule])
    assert result["errors"] and "must be string" in result["errors"]


def test_strict_validation_catches_a_misspelt_field(manifests: list[Manifest]) -> None:
    """Guards the test above: the validator really is strict about unknown fields."""
    deployment = json.loads(json.dumps(one(manifests, "Deployment", "-enrich")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# --- settings rendered into env --------------------------------------------


def test_every_rendered_env_var_is_a_real_setting(manifests: list[Manifest]) -> None:
    known = env_var_names()
    rendered: set[str] = set(settings_configmap(manifests))
    for _, spec in pod_specs(manifests):
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            rendered |= {v["name"] for v in c.get("env", []) if v["name"].startswith("SHOPPULSE_")}
    unknown = {name for name in rendered if name not in known and not name.startswith(KAFKA_OPT_PREFIX)}
    assert not unknown, f"env vars no setting reads: {sorted(unknown)}"
    for name in rendered:
        if name.startswith(KAFKA_OPT_PREFIX):
            (option,) = kafka_opts_from_env({name: "x"})
            assert option.replace(".", "").isalpha(), f"{name} -> {option!r} is not a client option name"


def test_every_required_setting_is_rendered(manifests: list[Manifest]) -> None:
    missing = REQUIRED_ENV - set(settings_configmap(manifests))
    assert not missing


def test_every_settings_value_is_rendered_verbatim(manifests: list[Manifest], scenario: tuple[str, list[Path]]) -> None:
    values = load_values(scenario[1])["settings"]
    data = settings_configmap(manifests)
    chart_owned = {
        "SHOPPULSE_HTTP__HOST",
        "SHOPPULSE_PROFILES__DATA_DIR",
        "SHOPPULSE_INSIGHTS__DATA_DIR",
        "SHOPPULSE_ENRICH__BUNDLE_DIR",
    }
    for group, fields in values.items():
        items = fields.items() if isinstance(fields, dict) else [(None, fields)]
        for field, value in items:
            name = f"SHOPPULSE_{group}__{field}".upper() if field else f"SHOPPULSE_{group}".upper()
            if name in chart_owned or value == {}:
                continue
            if isinstance(value, dict):
                assert json.loads(data[name]) == value, name
            elif isinstance(value, bool):
                assert data[name] == str(value).lower(), name
            else:
                assert data[name] == str(value), name


def test_large_numbers_are_not_rendered_in_exponent_form(render: Render, tmp_path: Path) -> None:
    # A values *file* (not --set): YAML numbers reach the templates as float64.
    override = tmp_path / "retention.yaml"
    override.write_text("settings:\n  kafka:\n    input_retention_ms: 604800000\n", encoding="utf-8")
    data = settings_configmap(render([override]))
    assert data["SHOPPULSE_KAFKA__INPUT_RETENTION_MS"] == "604800000"
    assert data["SHOPPULSE_ENRICH__SHUTDOWN_TIMEOUT_S"] == "30"


def test_rendered_env_loads_into_settings_that_match_the_pods(
    manifests: list[Manifest], scenario: tuple[str, list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    values = load_values(scenario[1])
    for workload, spec in pod_specs(manifests):
        if workload["kind"] == "Job":
            main = spec["containers"][0]
        else:
            main = container(spec, workload["metadata"]["name"].rsplit("-", 1)[1])
        settings = settings_from(pod_environ(manifests, spec, main), monkeypatch)

        assert settings.http.host == "0.0.0.0"
        assert settings.kafka.bootstrap_servers == values["settings"]["kafka"]["bootstrap_servers"]
        volume_mounts = mounts(main)
        if main["name"] in STAGES:
            (port,) = main["ports"]
            assert port["containerPort"] == getattr(settings.http, f"{main['name']}_port")
        if main["name"] in FAUST_STAGES:
            group = getattr(settings, main["name"])
            assert group.advertised_host == FIELD_PLACEHOLDERS["status.podIP"]
            data_mount = next(p for p, m in volume_mounts.items() if m["name"] == "data")
            assert group.data_dir.is_relative_to(data_mount)
            assert group.store == values["settings"][main["name"]].get("store", "memory")
        if main["name"] == "enrich" and "SHOPPULSE_ENRICH__BUNDLE_DIR" in settings_configmap(manifests):
            bundle_mount = next(p for p, m in volume_mounts.items() if m["name"] == "bundle")
            assert settings.enrich.bundle_dir.is_relative_to(bundle_mount)
            assert volume_mounts[bundle_mount]["readOnly"] is True
        security = values["kafka"]
        conf = settings.librdkafka()
        if security["securityProtocol"]:
            assert conf["security.protocol"] == security["securityProtocol"]
        if security["sasl"]["existingSecret"]:
            assert conf["sasl.mechanism"] == security["sasl"]["mechanism"]
            assert conf["sasl.username"] == conf["sasl.password"] == SECRET_PLACEHOLDER
        if security["tls"]["existingSecret"]:
            ca = Path(conf["ssl.ca.location"])
            assert ca.parent.as_posix() in volume_mounts, "the CA path must be inside the Secret mount"
        for option, value in values["settings"]["kafka"]["options"].items():
            assert conf[option] == str(value)


# --- secrets, security, probes, resources ---------------------------------


def test_kafka_credentials_come_only_from_existing_secrets(render: Render) -> None:
    (sasl_values,) = SCENARIOS["external-kafka-sasl"]
    values = load_values([sasl_values])
    manifests = render([sasl_values])
    assert not by_kind(manifests, "Secret"), "the chart must never create a Secret"
    assert not any("PASSWORD" in key or "USERNAME" in key for key in settings_configmap(manifests))
    workloads = pod_specs(manifests)
    assert {w["kind"] for w, _ in workloads} == {"Deployment", "StatefulSet", "Job"}
    for _, spec in workloads:
        env = {v["name"]: v for v in spec["containers"][0]["env"]}
        password = env["SHOPPULSE_KAFKA_OPT_SASL_PASSWORD"]
        assert "value" not in password
        assert password["valueFrom"]["secretKeyRef"] == {
            "name": values["kafka"]["sasl"]["existingSecret"],
            "key": values["kafka"]["sasl"]["passwordKey"],
        }
        tls_volume = next(v for v in spec["volumes"] if v["name"] == "kafka-tls")
        assert tls_volume["secret"]["secretName"] == values["kafka"]["tls"]["existingSecret"]


def test_pods_run_non_root_read_only_with_no_capabilities(manifests: list[Manifest]) -> None:
    for workload, spec in pod_specs(manifests):
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert "add" not in sc["capabilities"]
        for c in spec["containers"]:
            assert "/tmp" in mounts(c), f"{c['name']}: read-only root needs a writable /tmp"


def test_probes_hit_healthz_and_readyz_on_the_settings_port(manifests: list[Manifest]) -> None:
    data = settings_configmap(manifests)
    for workload in by_kind(manifests, "Deployment") + by_kind(manifests, "StatefulSet"):
        (main,) = workload["spec"]["template"]["spec"]["containers"]
        port_var = f"SHOPPULSE_HTTP__{main['name'].upper()}_PORT"
        (port,) = main["ports"]
        assert port["name"] == "http" and port["containerPort"] == int(data[port_var])
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert main["args"] == ["run", main["name"]]


def test_enrich_has_a_cpu_limit_for_onnx_thread_sizing(manifests: list[Manifest]) -> None:
    data = settings_configmap(manifests)
    (main,) = one(manifests, "Deployment", "-enrich")["spec"]["template"]["spec"]["containers"]
    if data.get("SHOPPULSE_ENRICH__INTRA_OP_THREADS", "0") == "0":
        assert main["resources"]["limits"]["cpu"], "intra_op_threads=0 sizes threads from the CPU limit"
    for workload, spec in pod_specs(manifests):
        for c in spec["containers"]:
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), workload["metadata"]["name"]


def test_grace_period_lets_enrich_drain(manifests: list[Manifest]) -> None:
    data = settings_configmap(manifests)
    spec = one(manifests, "Deployment", "-enrich")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > float(data["SHOPPULSE_ENRICH__SHUTDOWN_TIMEOUT_S"])


def test_pods_roll_when_settings_change(render: Render) -> None:
    def checksums(manifests: list[Manifest]) -> list[str]:
        return [
            w["spec"]["template"]["metadata"]["annotations"]["checksum/settings"]
            for w in by_kind(manifests, "Deployment") + by_kind(manifests, "StatefulSet")
        ]

    before = checksums(render())
    after = checksums(render(set_values=["settings.enrich.max_batch=128"]))
    assert len(before) == len(STAGES) and all(a != b for a, b in zip(before, after, strict=True))


# --- scaling ---------------------------------------------------------------


def test_hpa_by_default_and_keda_replaces_it(render: Render) -> None:
    default = render()
    hpa = one(default, "HorizontalPodAutoscaler")
    enrich = one(default, "Deployment", "-enrich")
    assert hpa["spec"]["scaleTargetRef"]["name"] == enrich["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in enrich["spec"], "an autoscaled Deployment must not pin replicas"
    assert not by_kind(default, "ScaledObject")

    (keda_values,) = SCENARIOS["keda"]
    keda = render([keda_values])
    assert not by_kind(keda, "HorizontalPodAutoscaler"), "KEDA owns its HPA; two would fight"
    scaled = one(keda, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == one(keda, "Deployment", "-enrich")["metadata"]["name"]
    kafka_trigger = next(t for t in scaled["spec"]["triggers"] if t["type"] == "kafka")
    data = settings_configmap(keda)
    assert kafka_trigger["metadata"]["bootstrapServers"] == data["SHOPPULSE_KAFKA__BOOTSTRAP_SERVERS"]
    assert kafka_trigger["metadata"]["consumerGroup"] == Settings().enrich.group_id
    assert scaled["spec"]["maxReplicaCount"] <= int(data["SHOPPULSE_KAFKA__PARTITIONS"])


def test_keda_authenticates_with_the_same_secrets(render: Render) -> None:
    (sasl_values,) = SCENARIOS["external-kafka-sasl"]
    manifests = render([sasl_values], ["enrich.keda.enabled=true"])
    auth = one(manifests, "TriggerAuthentication")
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {
        "username": ("kafka-credentials", "username"),
        "password": ("kafka-credentials", "password"),
        "ca": ("kafka-ca", "ca.crt"),
    }
    trigger = one(manifests, "ScaledObject")["spec"]["triggers"][0]
    assert trigger["metadata"]["sasl"] == "scram_sha512" and trigger["metadata"]["tls"] == "enable"
    assert trigger["metadata"]["consumerGroup"] == "shop-enrich"
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]


@pytest.mark.parametrize(
    ("set_values", "message"),
    [
        (["enrich.autoscaling.maxReplicas=20"], "partitions"),
        (["enrich.keda.enabled=true", "enrich.keda.maxReplicas=13"], "partitions"),
        (["profiles.replicas=13"], "partitions"),
        (["insights.replicas=13"], "insights.replicas=13 exceeds settings.kafka.partitions=12"),
        (["settings.insights.retention_s=3600"], "retention_s (3600) must be at least rolling_s + window_s (90000)"),
        (["settings.insights.store=postgres"], "store"),
        (["settings.insights.window_s=0"], "window_s"),
        (["enrich.bundle.image=x", "enrich.bundle.existingClaim=y"], "either image or existingClaim"),
        (["kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=PLAIN"], "existingSecret"),
        (["enrich.terminationGracePeriodSeconds=30"], "shutdown_timeout_s"),
        (["settings.enrich.max_batchh=8"], "max_batchh"),
        (["settings.profiles.store=postgres"], "store"),
        (["kafka.sasl.mechanism=GSSAPI"], "mechanism"),
        (["enrich.resources.limits.cpu=null"], "cpu"),  # the ONNX session layout reads the CPU quota
        (["settings.kafka.bootstrap_servers="], "bootstrap_servers"),
        (["settings.kafka.bootstrap_servers=kafka"], "bootstrap_servers"),  # no port
        (["networkPolicy.kafka.ports={}"], "ports"),
    ],
)
def test_broken_values_fail_the_render(helm: str, set_values: list[str], message: str) -> None:
    proc = run_helm(helm, "template", "sp", str(CHART), *value_args(set_values=set_values))
    assert proc.returncode != 0
    assert message in proc.stderr


def test_values_schema_settings_mirror_the_settings_object() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    settings_schema = schema["properties"]["settings"]
    assert settings_schema["additionalProperties"] is False
    groups = settings_schema["properties"]
    assert set(groups) == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            assert groups[name]["additionalProperties"] is False, name
            assert set(groups[name]["properties"]) == set(annotation.model_fields), name
            for field_name, sub in annotation.model_fields.items():
                schema_field = groups[name]["properties"][field_name]
                assert schema_field["type"] == _json_type(sub.annotation), f"{name}.{field_name}"
                if typing.get_origin(sub.annotation) is typing.Literal:
                    assert schema_field["enum"] == list(typing.get_args(sub.annotation)), field_name


def _json_type(annotation: Any) -> str | list[str]:
    args = typing.get_args(annotation)
    if type(None) in args:  # Optional[X]
        (inner,) = [a for a in args if a is not type(None)]
        return [_json_type(inner), "null"]  # type: ignore[list-item]
    if typing.get_origin(annotation) is typing.Literal:
        return "string"
    if typing.get_origin(annotation) is dict:
        return "object"
    types = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "string"}
    return types[annotation]


# --- workloads and their neighbours ---------------------------------------


def test_workload_selectors_match_their_pods_pdbs_and_services(manifests: list[Manifest]) -> None:
    workloads = by_kind(manifests, "Deployment") + by_kind(manifests, "StatefulSet")
    services = by_kind(manifests, "Service")
    for workload in workloads:
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        pdbs = [
            p
            for p in by_kind(manifests, "PodDisruptionBudget")
            if p["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        ]
        assert len(pdbs) == 1, workload["metadata"]["name"]
        assert any(s["spec"]["selector"].items() <= pod_labels.items() for s in services)
        for constraint in workload["spec"]["template"]["spec"]["topologySpreadConstraints"]:
            assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    for name in FAUST_STAGES:
        statefulset = one(manifests, "StatefulSet", f"-{name}")
        headless = one(manifests, "Service", f"-{name}-headless")
        assert headless["metadata"]["name"] == statefulset["spec"]["serviceName"]
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("name", FAUST_STAGES)
def test_faust_state_lives_on_a_pvc_or_is_rebuilt(render: Render, name: str) -> None:
    default = one(render(), "StatefulSet", f"-{name}")
    (claim,) = default["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert not any(v["name"] == "data" for v in default["spec"]["template"]["spec"]["volumes"])
    assert default["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}

    (keda_values,) = SCENARIOS["keda"]
    ephemeral = one(render([keda_values]), "StatefulSet", f"-{name}")
    assert "volumeClaimTemplates" not in ephemeral["spec"]
    data = next(v for v in ephemeral["spec"]["template"]["spec"]["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "emptyDir": {}}


def test_the_faust_stages_share_one_statefulset_template(render: Render) -> None:
    """Stage 3 is deployed as stage 2 is: the same objects and fields, its own names, port and values."""

    def shape(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: shape(value) for key, value in node.items()}
        if isinstance(node, list):
            return [shape(item) for item in node]
        return type(node).__name__

    manifests = render()
    profiles, insights = (one(manifests, "StatefulSet", f"-{name}") for name in FAUST_STAGES)
    renamed = json.loads(json.dumps(profiles).replace("profiles", "insights").replace("PROFILES", "INSIGHTS"))
    assert shape(renamed) == shape(insights)
    (main,) = insights["spec"]["template"]["spec"]["containers"]
    assert [v["name"] for v in main["env"]] == ["SHOPPULSE_INSIGHTS__ADVERTISED_HOST"]
    assert insights["spec"]["serviceName"] == "sp-shoppulse-insights-headless"
    assert main["ports"][0]["containerPort"] == 6067 and main["volumeMounts"][1]["mountPath"] == "/data"


def test_a_stage_can_be_switched_off(render: Render) -> None:
    manifests = render(set_values=["insights.enabled=false"])
    names = [m["metadata"]["name"] for m in manifests]
    assert not [n for n in names if "insights" in n]
    assert one(manifests, "StatefulSet", "-profiles")


def test_bundle_from_an_image_is_copied_by_an_init_container(render: Render) -> None:
    (gpu_values,) = SCENARIOS["gpu-enrich"]
    manifests = render([gpu_values])
    spec = one(manifests, "Deployment", "-enrich")["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert init["image"] == load_values([gpu_values])["enrich"]["bundle"]["image"]
    assert mounts(init)["/models/bundle"]["name"] == "bundle"
    bundle_volume = next(v for v in spec["volumes"] if v["name"] == "bundle")
    assert "emptyDir" in bundle_volume
    main = container(spec, "enrich")
    assert main["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert main["image"].endswith(":0.1.0-gpu")
    assert settings_configmap(manifests)["SHOPPULSE_ENRICH__BUNDLE_DIR"] == "/models/bundle"


def test_config_check_runs_first_with_the_stage_settings_credentials_and_ca(render: Render) -> None:
    (sasl_values,) = SCENARIOS["external-kafka-sasl"]
    spec = one(render([sasl_values]), "Deployment", "-enrich")["spec"]["template"]["spec"]
    (check,) = spec["initContainers"]
    main = container(spec, "enrich")
    assert check["args"] == ["config", "check"] and check["image"] == main["image"]
    assert check["envFrom"] == main["envFrom"] and check["env"] == main["env"]  # settings and SASL secrets
    assert {p for p, m in mounts(check).items() if m["name"] == "kafka-tls"} == {
        p for p, m in mounts(main).items() if m["name"] == "kafka-tls"
    }
    assert check["securityContext"] == main["securityContext"] and check["resources"]["limits"]


def test_bundle_from_a_pvc_is_mounted_read_only(render: Render) -> None:
    (keda_values,) = SCENARIOS["keda"]
    manifests = render([keda_values])
    spec = one(manifests, "Deployment", "-enrich")["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "bundle")
    assert volume["persistentVolumeClaim"] == {"claimName": "shoppulse-bundles", "readOnly": True}
    assert settings_configmap(manifests)["SHOPPULSE_ENRICH__BUNDLE_DIR"] == "/models/pvc/sentiment-tags/v3"


def test_default_bundle_is_the_one_in_the_image(render: Render) -> None:
    manifests = render()
    assert "SHOPPULSE_ENRICH__BUNDLE_DIR" not in settings_configmap(manifests)
    assert "initContainers" not in one(manifests, "Deployment", "-enrich")["spec"]["template"]["spec"]


def test_topics_job_is_a_hook_with_the_same_settings(render: Render) -> None:
    assert not by_kind(render(), "Job"), "the topics Job is opt-in"
    (sasl_values,) = SCENARIOS["external-kafka-sasl"]
    manifests = render([sasl_values])
    job = one(manifests, "Job")
    assert "pre-install" in job["metadata"]["annotations"]["helm.sh/hook"]
    (main,) = job["spec"]["template"]["spec"]["containers"]
    assert main["args"] == ["topics", "ensure"]
    env = {v["name"]: v.get("value") for v in main["env"]}
    assert {k: v for k, v in env.items() if v is not None} == settings_configmap(manifests)


# --- monitoring ------------------------------------------------------------


def test_servicemonitor_scrapes_every_stage_service(manifests: list[Manifest]) -> None:
    monitor = one(manifests, "ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    scraped = [s for s in by_kind(manifests, "Service") if wanted.items() <= s["metadata"]["labels"].items()]
    assert sorted(s["metadata"]["name"] for s in scraped) == sorted(f"sp-shoppulse-{name}" for name in STAGES)
    data = settings_configmap(manifests)
    for name in STAGES:
        service = one(manifests, "Service", f"-{name}")
        (port,) = service["spec"]["ports"]
        assert port["port"] == int(data[f"SHOPPULSE_HTTP__{name.upper()}_PORT"]) and port["targetPort"] == "http"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    for service in scraped:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == ["shop"]


def test_prometheusrule_ships_the_tested_rules_file_verbatim(manifests: list[Manifest]) -> None:
    rules_file = yaml.safe_load((CHART / "rules" / "shoppulse.rules.yaml").read_text(encoding="utf-8"))
    assert one(manifests, "PrometheusRule")["spec"] == rules_file


def test_dashboard_configmap_carries_the_dashboards_for_the_sidecar(manifests: list[Manifest]) -> None:
    configmap = one(manifests, "ConfigMap", "-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted((CHART / "dashboards").glob("*.json"))
    assert [f.name for f in files] == ["shoppulse-business.json", "shoppulse.json"]
    assert sorted(configmap["data"]) == [f.name for f in files]
    for file in files:
        assert json.loads(configmap["data"][file.name]) == json.loads(file.read_text(encoding="utf-8"))


def test_monitoring_objects_can_be_switched_off(render: Render) -> None:
    manifests = render(
        set_values=[
            "monitoring.serviceMonitor.enabled=false",
            "monitoring.prometheusRule.enabled=false",
            "monitoring.dashboard.enabled=false",
        ]
    )
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert not [m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-dashboard")]


def test_monitoring_objects_need_their_crds_so_the_chart_installs_anywhere(render: Render) -> None:
    """On a cluster without prometheus-operator, `helm install` failed on the ServiceMonitor."""
    bare = {m["kind"] for m in render(crds=False)}
    assert not bare & {"ServiceMonitor", "PrometheusRule"}
    assert {"Deployment", "StatefulSet"} <= bare
    assert {"ServiceMonitor", "PrometheusRule"} <= {m["kind"] for m in render()}


def test_every_stage_gets_a_startup_probe_before_liveness(render: Render) -> None:
    workloads = [(w, spec) for w, spec in pod_specs(render()) if w["kind"] != "Job"]
    assert len(workloads) == len(STAGES)
    for workload, spec in workloads:
        main = spec["containers"][0]
        assert main["startupProbe"]["httpGet"]["path"] == "/readyz", workload["metadata"]["name"]
        assert main["startupProbe"]["failureThreshold"] * main["startupProbe"]["periodSeconds"] >= 300


def test_the_network_policy_admits_metrics_and_lookups_and_reaches_the_brokers(render: Render) -> None:
    assert not by_kind(render(), "NetworkPolicy")
    policy = one(render(SCENARIOS["network-policy"]), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "sp"}}} in ingress["from"]
    # The policy covers every stage's pods: their metrics, probes and lookups all use the port named http.
    manifests = render(SCENARIOS["network-policy"])
    selected = one(manifests, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]
    for name, kind in STAGES.items():
        pod = one(manifests, kind, f"-{name}")["spec"]["template"]
        assert selected.items() <= pod["metadata"]["labels"].items(), name
        assert [p["name"] for p in pod["spec"]["containers"][0]["ports"]] == ["http"], name
    kafka, dns, own = policy["egress"]
    assert kafka["ports"] == [{"port": 9092, "protocol": "TCP"}]
    assert kafka["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}}}]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert own["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "sp"}}}]


def test_every_scenario_is_documented() -> None:
    page = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    for path in SCENARIOS.values():
        for file in path:
            assert file.name in page, f"{file.name} is not described in docs/deployment.md"


def test_the_image_the_deployment_page_builds_is_the_chart_default() -> None:
    values = load_values([])
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    image = f"{values['image']['repository']}:{chart['appVersion']}"
    assert f"docker build -t {image} ." in (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert f"docker build -t {image} ." in (ROOT / "Dockerfile").read_text(encoding="utf-8")
