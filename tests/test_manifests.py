"""The Kustomize overlays render with the pip-installed kubectl, validate strictly against the Kubernetes
API schemas, follow the pod-security rules, and agree with the `cluster:` block of params.yaml."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from manifest_helpers import (
    KUBECTL,
    KUBERNETES_VALIDATE,
    NEWEST_KUBERNETES,
    OVERLAYS,
    ROOT,
    TARGET_KUBERNETES,
    copy_manifests,
    kustomize,
    objects,
    pod_specs,
)

from kangaroo.config import load_params
from kangaroo.k8s.manifest_inputs import MINIO_ENV, MINIO_ENVS, ManifestInputError, prepare_manifest_inputs

GPU_RESOURCE = "nvidia.com/gpu"
ROOT_SECRET = "kangaroo-minio"  # MinIO's root account (manifests/base/kustomization.yaml)
ROOT_SECRET_USERS = {"StatefulSet/minio", "Job/minio-create-buckets"}


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    return copy_manifests(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def rendered(repo_copy) -> dict[str, str]:
    return {overlay: kustomize(repo_copy, overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def cluster():
    return load_params(ROOT / "params.yaml").cluster


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("version", [TARGET_KUBERNETES, NEWEST_KUBERNETES])
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_strictly(rendered, overlay, version, tmp_path):
    """Against the target version and the newest schemas shipped (no API removed under us since)."""
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered[overlay])
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(objects(rendered[overlay])) >= 11


def test_strict_validation_catches_an_unknown_field(rendered, tmp_path):
    """The validator really is strict: a misspelt field in a rendered StatefulSet fails."""
    broken = rendered["local"].replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:", 1)
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--quiet", "-k", TARGET_KUBERNETES, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "readOnlyRootFileSystem" in result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_security_on_every_workload(rendered, overlay):
    specs = pod_specs(objects(rendered[overlay]))
    assert {name for name, _ in specs} >= {"StatefulSet/minio", "Job/minio-create-buckets"}
    for name, spec in specs:
        pod_context = spec.get("securityContext", {})
        assert pod_context.get("runAsNonRoot") is True, name
        assert pod_context.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, f"{name}: needs no API token"
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            assert context.get("privileged") is not True, where
            # Every workload here tolerates a read-only root: writable paths are emptyDir/PVC mounts.
            assert context.get("readOnlyRootFilesystem") is True, where
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: read-only root needs a writable /tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_and_pinned_images_on_every_container(rendered, overlay):
    for name, spec in pod_specs(objects(rendered[overlay])):
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where}: {bound}"
            image = container["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+(@sha256:[0-9a-f]{64})?", image), (
                f"{where}: {image} unpinned"
            )
            assert not image.endswith(":latest"), where
            assert container.get("imagePullPolicy") != "Always", where


def test_gpu_limits_only_where_gpus_are_requested(rendered, cluster):
    gpu_pool = cluster.gpu_pool
    taints = [t.model_dump(exclude_none=True) for t in gpu_pool.tolerations]
    seen_gpu_workloads = []
    for overlay in OVERLAYS:
        for name, spec in pod_specs(objects(rendered[overlay])):
            gpus = [
                container["resources"].get("limits", {}).get(GPU_RESOURCE) for container in containers(spec)
            ]
            requested = [
                container["resources"].get("requests", {}).get(GPU_RESOURCE) for container in containers(spec)
            ]
            tolerations = [
                {key: value for key, value in t.items() if value is not None}
                for t in spec.get("tolerations", [])
            ]
            if name.startswith("ClusterTrainingRuntime/"):
                # TrainJob nodes: each TrainJob sets its GPU count; the runtime places them on the GPU pool
                assert not any(gpus), f"{name}: GPU counts belong to the TrainJob (resourcesPerNode)"
                if overlay == "gpu":
                    assert spec["nodeSelector"] == gpu_pool.node_selector, name
                    assert all(taint in tolerations for taint in taints), name
                    assert spec.get("priorityClassName"), name
                else:
                    assert not spec.get("nodeSelector") and not tolerations, name
                continue
            if any(gpus):
                seen_gpu_workloads.append((overlay, name))
                assert overlay == "gpu", f"{overlay}: {name} asks for GPUs on a CPU-only cluster"
                assert requested == gpus, f"{name}: GPU requests must equal limits (extended resource)"
                assert spec["nodeSelector"] == gpu_pool.node_selector, name
                assert all(taint in tolerations for taint in taints), f"{name}: cannot land on the GPU pool"
                assert spec.get("priorityClassName"), name
            else:
                assert not any(requested), name
                assert not any(t.get("key") == GPU_RESOURCE for t in tolerations), (
                    f"{name}: a CPU workload tolerating the GPU taint would squat GPU nodes"
                )
            if overlay == "gpu" and not any(gpus):
                assert spec.get("nodeSelector") == cluster.cpu_pool.node_selector, name
            if overlay == "local":
                assert not spec.get("nodeSelector") and not spec.get("priorityClassName"), name
    assert seen_gpu_workloads == [("gpu", "Job/gpu-check")]
    assert GPU_RESOURCE == gpu_pool.accelerator_type


def test_priority_classes_match_the_paper_profile(rendered):
    paper = load_params(ROOT / "params.yaml", "paper").cluster
    classes = by_kind(objects(rendered["gpu"]), "PriorityClass")
    assert set(classes) == {paper.training_priority_class, paper.curation_priority_class}
    training, curation = classes[paper.training_priority_class], classes[paper.curation_priority_class]
    assert training["value"] > curation["value"]
    assert curation["preemptionPolicy"] == "Never"
    assert by_kind(objects(rendered["local"]), "PriorityClass") == {}
    tiny = load_params(ROOT / "params.yaml", "tiny").cluster
    assert tiny.training_priority_class == "", "the local overlay has no PriorityClass to refer to"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_names_match_the_cluster_block(rendered, overlay, cluster):
    docs = objects(rendered[overlay])
    namespaced = [doc for doc in docs if doc["kind"] not in ("Namespace", "PriorityClass")]
    assert {doc["metadata"].get("namespace") for doc in namespaced} == {cluster.namespace}
    assert set(by_kind(docs, "Namespace")) == {cluster.namespace}

    step_secrets = {cluster.minio_secret, cluster.curation_minio_secret}
    for name in step_secrets:
        assert set(by_kind(docs, "Secret")[name]["data"]) == set(cluster.minio_secret_env), name
    assert cluster.checkpoint_pvc in by_kind(docs, "PersistentVolumeClaim")
    assert cluster.service_account in by_kind(docs, "ServiceAccount")
    binding = by_kind(docs, "RoleBinding")[cluster.service_account]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": cluster.service_account, "namespace": cluster.namespace}
    ]
    storage = load_params(ROOT / "params.yaml").storage
    host, port = storage.endpoint.split(":")
    assert host == f"minio.{cluster.namespace}.svc.cluster.local"
    service = by_kind(docs, "Service")["minio"]
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    bucket_spec = by_kind(docs, "Job")["minio-create-buckets"]["spec"]["template"]["spec"]
    make_bucket = containers(bucket_spec)[0]
    assert make_bucket["command"][-1] == f"kangaroo/{storage.bucket}"
    for name, spec in pod_specs(docs):
        for container in containers(spec):
            if container["image"].startswith(cluster.image.rsplit(":", 1)[0]):
                assert container["image"] == cluster.image, name
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in cluster.minio_secret_env, name
                    # the root account: only MinIO itself and the Job that creates the scoped users
                    allowed = step_secrets | ({ROOT_SECRET} if name in ROOT_SECRET_USERS else set())
                    assert ref["name"] in allowed, f"{name}: {ref['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_is_least_privilege(rendered, overlay, cluster):
    docs = objects(rendered[overlay])
    assert by_kind(docs, "ClusterRole") == {} and by_kind(docs, "ClusterRoleBinding") == {}
    roles = by_kind(docs, "Role")

    def granted(role: str) -> set[tuple]:
        return {
            (group, resource, verb, tuple(rule.get("resourceNames", ())))
            for rule in roles[role]["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }

    # The run's account, whose token every task (the ones decoding uploads included) carries: one read.
    assert granted(cluster.service_account) == {("", "configmaps", "get", (cluster.params_configmap,))}
    trainer = granted(cluster.trainer_service_account)
    assert all("*" not in entry[:3] for entry in trainer)
    verbs_on = lambda group, resource: {e[2] for e in trainer if e[:2] == (group, resource)}  # noqa: E731
    assert verbs_on("kubeflow.org", "pytorchjobs") == {"create", "get", "list", "watch", "delete"}
    assert verbs_on("", "secrets") == set(), "the trainer reads no Secret"
    assert verbs_on("", "pods/log") == {"get"}
    assert not any(verb in {"create", "update", "patch", "delete"} for verb in verbs_on("", "pods"))
    accounts = by_kind(docs, "ServiceAccount")
    assert accounts[cluster.trainer_service_account]["automountServiceAccountToken"] is False
    token = by_kind(docs, "Secret")[cluster.trainer_token_secret]
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {
        "kubernetes.io/service-account.name": cluster.trainer_service_account
    }
    bound = {subject["name"] for doc in by_kind(docs, "RoleBinding").values() for subject in doc["subjects"]}
    assert bound == {cluster.service_account, cluster.trainer_service_account}
    runner_roles = {
        doc["roleRef"]["name"]
        for doc in by_kind(docs, "RoleBinding").values()
        if any(subject["name"] == cluster.service_account for subject in doc["subjects"])
    }
    assert runner_roles == {cluster.service_account}, "the run's account is bound to its one-read Role only"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_trainjob_launcher_rbac_is_namespaced_least_privilege(rendered, overlay, cluster):
    docs = objects(rendered[overlay])
    role = by_kind(docs, "Role")["kangaroo-trainjob-launcher"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        *(
            ("trainer.kubeflow.org", "trainjobs", verb)
            for verb in ("create", "get", "list", "watch", "delete")
        ),
        ("trainer.kubeflow.org", "trainjobs/status", "get"),
        *(("", "pods", verb) for verb in ("get", "list", "watch")),
        ("", "pods/log", "get"),
    }, "no update/patch, nothing on runtimes, nothing cluster-wide"
    assert role["metadata"]["namespace"] == cluster.namespace
    binding = by_kind(docs, "RoleBinding")["kangaroo-trainjob-launcher"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": cluster.trainer_service_account, "namespace": cluster.namespace}
    ], "the trainer's token, mounted into the launcher task only; not the account every task carries"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_trainer_runtime_validates_against_the_pinned_crd(rendered, overlay, cluster):
    """kubernetes-validate skips custom kinds: the rendered ClusterTrainingRuntime is checked against Trainer
    v2's CRD (strict) and its pod template against core/v1."""
    from kangaroo.k8s.crd_schema import validate_cluster_training_runtime

    (runtime,) = by_kind(objects(rendered[overlay]), "ClusterTrainingRuntime").values()
    validate_cluster_training_runtime(runtime, TARGET_KUBERNETES)
    assert runtime["metadata"]["name"] == cluster.trainjob_runtime
    # every object kubernetes-validate cannot check (a non-Kubernetes API group) is one checked here
    builtin = (
        "v1",
        "apps/",
        "batch/",
        "rbac.authorization.k8s.io/",
        "networking.k8s.io/",
        "scheduling.k8s.io/",
    )
    custom = {doc["kind"] for doc in objects(rendered[overlay]) if not doc["apiVersion"].startswith(builtin)}
    assert custom == {"ClusterTrainingRuntime"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_minio_reachable_only_from_its_namespace(rendered, overlay):
    docs = objects(rendered[overlay])
    policy = by_kind(docs, "NetworkPolicy")["minio-same-namespace-only"]
    minio_labels = by_kind(docs, "StatefulSet")["minio"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= minio_labels.items()
    (rule,) = policy["spec"]["ingress"]
    # A bare podSelector (no namespaceSelector/ipBlock) only admits pods of the policy's namespace.
    assert rule["from"] == [{"podSelector": {}}]
    assert {port["port"] for port in rule["ports"]} == {9000}, "S3 only: the console is off"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_params_configmap_is_the_repos_params_yaml(rendered, overlay, cluster):
    configmap = by_kind(objects(rendered[overlay]), "ConfigMap")[cluster.params_configmap]
    assert configmap["data"]["params.yaml"] == (ROOT / "params.yaml").read_text()


def test_overlays_differ_where_they_should(rendered):
    local, gpu = (by_kind(objects(rendered[o]), "PersistentVolumeClaim") for o in ("local", "gpu"))
    assert local["kangaroo-checkpoints"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert gpu["kangaroo-checkpoints"]["spec"]["accessModes"] == ["ReadWriteMany"], (
        "multi-node stages share it"
    )
    minio = {o: by_kind(objects(rendered[o]), "StatefulSet")["minio"] for o in OVERLAYS}
    local_limits = minio["local"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert local_limits == {"cpu": "1", "memory": "1Gi"}


def test_no_plaintext_secrets_committed():
    """Committed manifests hold placeholders only; real credentials live in the git-ignored minio.env."""
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "manifests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {f"{env}.example" for env in MINIO_ENVS} <= set(tracked)
    assert not {str(env) for env in MINIO_ENVS} & set(tracked)
    assert "manifests/base/params/params.yaml" not in tracked
    for relative in tracked:
        text = (ROOT / relative).read_text()
        for doc in yaml.safe_load_all(text) if relative.endswith((".yaml", ".yml")) else ():
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                # a service-account token Secret carries no value: the token controller fills it in
                if doc.get("type") == "kubernetes.io/service-account-token" and not {
                    "data",
                    "stringData",
                } & set(doc):
                    continue
                pytest.fail(f"{relative}: a Secret object is committed (use the secretGenerator)")
        for line in text.splitlines():
            if relative.endswith(".env.example") and "=" in line and not line.startswith("#"):
                assert line.split("=", 1)[1].startswith("REPLACE_ME"), (
                    f"{relative}: {line!r} is not a placeholder"
                )
        assert not re.search(r"(?i)(password|secret_?key|access_?key)\s*[:=]\s*[A-Za-z0-9/+]{16,}", text), (
            relative
        )


def test_manifest_inputs_keep_existing_credentials_and_refresh_params(tmp_path):
    repo = copy_manifests(tmp_path)
    first = {env: (repo / env).read_text() for env in MINIO_ENVS}
    for env, text in first.items():
        values = dict(line.split("=", 1) for line in text.split())
        assert set(values) == {"accesskey", "secretkey"}
        assert len(values["accesskey"]) == 20 and len(values["secretkey"]) == 40
        assert all(value.isalnum() and not value.startswith("REPLACE_ME") for value in values.values())
        assert (repo / env).stat().st_mode & 0o077 == 0, f"{env}: credentials file readable by others"
    assert len({text for text in first.values()}) == len(MINIO_ENVS), "every identity has its own keys"
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "# edited\n")
    prepare_manifest_inputs(repo)
    assert {env: (repo / env).read_text() for env in MINIO_ENVS} == first, "credentials are never regenerated"
    assert (repo / "manifests/base/params/params.yaml").read_text().endswith("# edited\n")
    other = copy_manifests(tmp_path / "other")
    assert (other / MINIO_ENV).read_text() != first[MINIO_ENV], "credentials are random per deployment"


def test_manifest_inputs_name_the_missing_file(tmp_path):
    with pytest.raises(ManifestInputError, match="params.yaml"):
        prepare_manifest_inputs(tmp_path)
    (tmp_path / "params.yaml").write_text("profile: tiny\n")
    with pytest.raises(ManifestInputError, match="minio.env.example"):
        prepare_manifest_inputs(tmp_path)


def test_fresh_clone_without_generated_inputs_fails_clearly(tmp_path):
    """Without `make manifests-config`, kustomize stops and names the missing file (no silent defaults)."""
    shutil.copytree(
        ROOT / "manifests", tmp_path / "manifests", ignore=shutil.ignore_patterns("*.env", "params.yaml")
    )
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(tmp_path / "manifests/overlays/local")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "minio.env" in result.stderr or "params.yaml" in result.stderr
    assert yaml.safe_load((ROOT / "manifests/base/kustomization.yaml").read_text())["generatorOptions"] == {
        "disableNameSuffixHash": True
    }
