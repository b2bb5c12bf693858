"""Pod labels the egress NetworkPolicies (manifests/base/network/egress.yaml) select on. The pipeline sets
them on KFP tasks (kfp-kubernetes `add_pod_label`), the PyTorchJob generator on its replicas; a pod without
any of them may reach DNS, MinIO's S3 port and the Kubeflow Pipelines services, nothing else."""

# Steps that decode uploaded media (plan/curate shards, caption): never more than the defaults above.
UNTRUSTED_INPUT = "kangaroo.io/untrusted-input"
# The caption step: may also reach the captioning server (caption.openai.base_url's Service).
CAPTIONER_EGRESS = "kangaroo.io/egress-captioner"
# Training and evaluation: HTTPS anywhere (the Kubernetes API for PyTorchJobs, model hubs).
HTTPS_EGRESS = "kangaroo.io/egress-https"
# Every node of a multi-node stage (PyTorchJob replicas, TrainJob nodes): they reach each other on any port.
TRAINING_NODE = "kangaroo.io/training-node"
ENABLED = "true"
# What the PyTorchJob generator and the ClusterTrainingRuntime put on a training node's pod.
TRAINING_NODE_LABELS = {TRAINING_NODE: ENABLED, HTTPS_EGRESS: ENABLED}
