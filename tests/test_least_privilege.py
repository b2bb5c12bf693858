"""Least privilege on the cluster, checked on what is deployed: the compiled pipeline's pod labels, Secrets
and volumes against the rendered NetworkPolicies, RBAC and MinIO identities (issue 21, "blast radius")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from manifest_helpers import DECODING_EXECUTORS, copy_manifests, kustomize, objects

from kangaroo.config import load_params
from kangaroo.k8s import pod_labels
from kangaroo.k8s.pytorchjob import build_pytorchjob, default_api_client
from pipelines.compile import compile_pipeline

KUBEFLOW_PORTS = {8887, 8888, 8080, 9000}


@pytest.fixture(scope="module")
def cluster():
    return load_params().cluster


@pytest.fixture(scope="module")
def executors(tmp_path_factory) -> dict[str, dict]:
    path = compile_pipeline(tmp_path_factory.mktemp("ir") / "kangaroo_pipeline.yaml")
    _, platform = yaml.safe_load_all(path.read_text())
    return platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> list[dict]:
    return objects(kustomize(copy_manifests(tmp_path_factory.mktemp("repo")), "gpu"))


def named(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels, matchExpressions with Exists/In)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "Exists" and key not in labels:
            return False
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
    return True


def egress_rules(docs: list[dict], labels: dict[str, str]) -> list[dict]:
    """Every egress rule that applies to a pod of the namespace with LABELS."""
    policies = [p for p in named(docs, "NetworkPolicy").values() if "Egress" in p["spec"]["policyTypes"]]
    return [
        rule
        for p in policies
        if selects(p["spec"]["podSelector"], labels)
        for rule in p["spec"].get("egress", [])
    ]


def destinations(rules: list[dict]) -> set[tuple[str, int | None]]:
    """(peer, port) pairs: peer = the peer's selectors or ipBlock as text, port None = any port."""
    pairs = set()
    for rule in rules:
        ports = [p["port"] for p in rule.get("ports", [])] or [None]
        for peer in rule.get("to", []):
            pairs |= {(json.dumps(peer, sort_keys=True), port) for port in ports}
    return pairs


def test_egress_is_denied_by_default(docs):
    deny = named(docs, "NetworkPolicy")["default-deny-egress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Egress"]}


def test_steps_that_decode_uploads_reach_only_dns_minio_kfp_and_the_captioner(docs, executors):
    allowed_peers = {
        "dns": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        },
        "minio": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "minio"}}},
        "kubeflow": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}},
        "captioner": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "captioner"}}},
    }
    text = {name: json.dumps(peer, sort_keys=True) for name, peer in allowed_peers.items()}
    base = {(text["dns"], 53), (text["minio"], 9000)} | {(text["kubeflow"], port) for port in KUBEFLOW_PORTS}
    for name in DECODING_EXECUTORS:
        labels = executors[name].get("podMetadata", {}).get("labels", {})
        assert labels.get(pod_labels.UNTRUSTED_INPUT) == "true", name
        assert pod_labels.HTTPS_EGRESS not in labels, f"{name} must not reach the API server or the internet"
        reach = destinations(egress_rules(docs, labels))
        expected = base | ({(text["captioner"], 8000)} if name == "exec-shard-captioning" else set())
        assert reach == expected, name
        assert not executors[name].get("secretAsVolume"), f"{name}: no trainer token"
    # a TrainJob launcher may reach HTTPS (the Kubernetes API) and holds the trainer token
    launcher = next(spec for spec in executors.values() if spec.get("secretAsVolume"))
    assert any(port == 443 for _, port in destinations(egress_rules(docs, launcher["podMetadata"]["labels"])))


def test_only_job_launchers_hold_the_token_that_creates_pods(executors, cluster):
    holders = {
        name
        for name, spec in executors.items()
        for volume in spec.get("secretAsVolume", [])
        if volume["secretName"] == cluster.trainer_token_secret
    }
    # the TrainJob launchers (the tasks that read their own pod's identity for the job's ownerReference)
    launchers = {name for name, spec in executors.items() if spec.get("fieldPathAsEnv")}
    assert holders == launchers and len(launchers) == 5, "one launcher per curriculum stage"
    for name in holders:
        (volume,) = executors[name]["secretAsVolume"]
        assert volume["mountPath"] == cluster.trainer_token_mount


def test_every_task_runs_as_the_non_root_user(executors, cluster):
    for name, spec in executors.items():
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert int(context["runAsUser"]) == int(context["runAsGroup"]) == cluster.run_as_user, name


def test_training_nodes_reach_each_other_and_https(docs, cluster):
    """PyTorchJob replicas (labels from the generator) and TrainJob nodes (labels from the runtime)."""
    job = build_pytorchjob("kg-x", "instruction_tuning", ["--out", "o"], 2, 1, cluster)
    runtime = named(docs, "ClusterTrainingRuntime")[cluster.trainjob_runtime]
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    for labels in (
        job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["metadata"]["labels"],
        node["template"]["spec"]["template"]["metadata"]["labels"],
    ):
        assert pod_labels.TRAINING_NODE_LABELS.items() <= labels.items()
        reach = destinations(egress_rules(docs, labels))
        other_nodes = json.dumps(
            {"podSelector": {"matchLabels": {pod_labels.TRAINING_NODE: "true"}}}, sort_keys=True
        )
        assert (other_nodes, None) in reach, "rendezvous and NCCL ports are not fixed"
        assert any(port == 443 for _, port in reach)


def test_namespace_enforces_restricted_pod_security(docs, cluster):
    labels = named(docs, "Namespace")[cluster.namespace]["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_minio_console_is_off_and_not_on_the_service(docs):
    service = named(docs, "Service")["minio"]
    assert [port["port"] for port in service["spec"]["ports"]] == [9000]
    (container,) = named(docs, "StatefulSet")["minio"]["spec"]["template"]["spec"]["containers"]
    assert "--console-address" not in container["args"]
    assert {"name": "MINIO_BROWSER", "value": "off"} in container["env"]
    assert [port["containerPort"] for port in container["ports"]] == [9000]


def statements(docs: list[dict], policy: str) -> list[dict]:
    return json.loads(named(docs, "ConfigMap")["kangaroo-minio-policies"]["data"][f"{policy}.json"])[
        "Statement"
    ]


def actions_on(statements: list[dict], resource: str) -> set[str]:
    return {
        a for s in statements if resource in s["Resource"] and s["Effect"] == "Allow" for a in s["Action"]
    }


def test_minio_identities_are_scoped(docs):
    bucket = load_params().storage.bucket
    curation = statements(docs, "kangaroo-curation")
    assert actions_on(curation, f"arn:aws:s3:::{bucket}/raw/*") == {"s3:GetObject"}
    assert "s3:PutObject" in actions_on(curation, f"arn:aws:s3:::{bucket}/curated/*")
    resources = {r for s in curation for r in s["Resource"]}
    assert resources == {
        f"arn:aws:s3:::{bucket}",
        f"arn:aws:s3:::{bucket}/raw/*",
        f"arn:aws:s3:::{bucket}/curated/*",
    }
    for policy in ("kangaroo-curation", "kangaroo-pipeline"):
        for statement in statements(docs, policy):
            assert all(r.startswith(f"arn:aws:s3:::{bucket}") for r in statement["Resource"]), policy
            assert not any(a.endswith("*") or a.startswith("admin:") for a in statement["Action"]), policy
    # the bucket Job installs both policies and attaches each to its own user, one mc command per container
    spec = named(docs, "Job")["minio-create-buckets"]["spec"]["template"]["spec"]
    commands = [c["command"] for c in spec["initContainers"] + spec["containers"]]
    for who in ("pipeline", "curation"):
        user = f"$({who.upper()}_ACCESS_KEY)"
        assert [
            "mc",
            "admin",
            "policy",
            "create",
            "kangaroo",
            f"kangaroo-{who}",
            f"/policies/kangaroo-{who}.json",
        ] in commands
        assert ["mc", "admin", "user", "add", "kangaroo", user, f"$({who.upper()}_SECRET_KEY)"] in commands
        assert ["mc", "admin", "policy", "attach", "kangaroo", f"kangaroo-{who}", "--user", user] in commands


def test_trainer_api_client_reads_the_mounted_token(tmp_path, monkeypatch):
    """The token Secret mounted in training steps (token + ca.crt) is what the PyTorchJob client uses."""
    (tmp_path / "token").write_text("trainer-token-value")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    client = default_api_client(str(tmp_path))
    assert client.configuration.host == "https://10.0.0.1:443"
    assert client.configuration.api_key["authorization"].lower() == "bearer trainer-token-value"


@pytest.fixture
def iam_s3_server(tmp_path):
    """A moto_server subprocess enforcing IAM: the first SETUP_ACTIONS requests are unauthenticated (they
    create the bucket and the users), every later one must be signed by a user whose policy allows it."""
    from s3_server import free_port, wait_for_port

    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS)}
    moto_server = str(Path(sys.executable).with_name("moto_server"))
    with (tmp_path / "moto.log").open("wb") as log:
        process = subprocess.Popen(
            [moto_server, "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        wait_for_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


SETUP_ACTIONS = 7  # the bucket, then 2 users x (create, attach the policy document, create a key)


def client(service: str, url: str, key: dict | None = None):
    import boto3

    credentials = (key["AccessKeyId"], key["SecretAccessKey"]) if key else ("setup", "setup")
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=credentials[0],
        aws_secret_access_key=credentials[1],
    )


def test_curation_identity_reads_uploads_and_writes_curated_only(docs, iam_s3_server):
    """The policy documents from the rendered manifests, enforced by a real S3 server's IAM."""
    from botocore.exceptions import ClientError

    bucket = load_params().storage.bucket
    documents = named(docs, "ConfigMap")["kangaroo-minio-policies"]["data"]
    client("s3", iam_s3_server).create_bucket(Bucket=bucket)  # the bucket Job's part (root)
    iam = client("iam", iam_s3_server)
    keys = {}
    for who in ("pipeline", "curation"):
        iam.create_user(UserName=who)
        iam.put_user_policy(UserName=who, PolicyName=who, PolicyDocument=documents[f"kangaroo-{who}.json"])
        keys[who] = iam.create_access_key(UserName=who)["AccessKey"]
    pipeline, curation = (client("s3", iam_s3_server, keys[who]) for who in ("pipeline", "curation"))
    pipeline.put_object(Bucket=bucket, Key="raw/upload.mp4", Body=b"video bytes")
    pipeline.put_object(Bucket=bucket, Key="dvc/files/md5/ab/cdef", Body=b"dataset")

    def refused(call, **kwargs) -> bool:
        try:
            call(Bucket=bucket, **kwargs)
        except ClientError as err:
            return err.response["Error"]["Code"] == "AccessDenied"
        return False

    assert curation.get_object(Bucket=bucket, Key="raw/upload.mp4")["Body"].read() == b"video bytes"
    curation.put_object(Bucket=bucket, Key="curated/shard-00000/ledger.jsonl", Body=b"{}")
    assert refused(curation.get_object, Key="dvc/files/md5/ab/cdef"), "dataset versions are not curation's"
    assert refused(curation.put_object, Key="raw/upload.mp4", Body=b"overwritten")
    assert refused(curation.put_object, Key="dvc/files/md5/ab/cdef", Body=b"poisoned")
    assert refused(curation.delete_object, Key="raw/upload.mp4")
    assert refused(pipeline.create_bucket), "no identity but root may create buckets"
    assert pipeline.get_object(Bucket=bucket, Key="curated/shard-00000/ledger.jsonl")["Body"].read() == b"{}"
