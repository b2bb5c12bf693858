"""The kangaroo-flow DAG: raw videos -> curated, captioned, gated, versioned dataset -> five-stage curriculum
-> evaluation -> registered model. Only wiring and placement here; every step is a component in components/.
"""

from kfp import dsl, kubernetes

from components.curation import (
    alignment_model_preparation,
    caption_merge,
    fingerprint_inputs,
    merge_curation,
    plan_shards,
    shard_captioning,
    shard_curation,
)
from components.evaluation import model_evaluation, register_model
from components.image import COMPILE_TIME_PARAMS, PINNED_IMAGE, PROJECT_IMAGE, project_params_text
from components.packing import pack_data
from components.placement import plan_training
from components.quality import quality_gate, stop_on_failed_gate
from components.step_config import resolve_step_configs
from components.summary import list_run_outputs, publish_run_summary
from components.training import stage_training, vision_tower_pretraining
from components.versioning import dataset_versioning
from kangaroo.k8s import pod_labels
from kangaroo.k8s.cluster_job import SHM_SIZE
from kangaroo.k8s.settings import ClusterSettings, NodePool
from kangaroo.k8s.trainjob import POD_ENV
from kangaroo.step_config import IMAGE_DIGEST_ENV, IMAGE_ENV
from kangaroo.train.settings import STAGE_NAMES as CURRICULUM

# Placement is the compiled profile's (`make compile PROFILE=paper`: one pipeline per profile).
CLUSTER: ClusterSettings = COMPILE_TIME_PARAMS.cluster


def place_on(task: dsl.PipelineTask, pool: NodePool, gpus=None) -> dsl.PipelineTask:
    """Node selector, tolerations and resources of a node pool; accelerators only on GPU pools."""
    for label, value in pool.node_selector.items():
        kubernetes.add_node_selector(task, label_key=label, label_value=value)
    for toleration in pool.tolerations:
        kubernetes.add_toleration(
            task,
            key=toleration.key,
            operator=toleration.operator,
            value=toleration.value,
            effect=toleration.effect,
        )
    task.set_cpu_request(pool.cpu_request).set_cpu_limit(pool.cpu_limit)
    task.set_memory_request(pool.memory_request).set_memory_limit(pool.memory_limit)
    if pool.accelerator_type and gpus is not None:
        task.set_accelerator_type(pool.accelerator_type).set_accelerator_limit(gpus)
    return with_image_identity(task)


def with_image_identity(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """The image reference (digest or commit tag) of a `make compile` build, in the task's env: the resolve
    task records it in every step's code version; a TrainJob launcher submits the same image."""
    if PINNED_IMAGE:
        task.set_env_variable(IMAGE_ENV, PROJECT_IMAGE)
        task.set_env_variable(IMAGE_DIGEST_ENV, PROJECT_IMAGE)
    return task


def with_minio_credentials(task: dsl.PipelineTask, secret: str = CLUSTER.minio_secret) -> dsl.PipelineTask:
    """MinIO credentials come from a Kubernetes Secret, never from pipeline parameters; every task runs as
    the image's non-root user (the namespace enforces Pod Security `restricted`)."""
    kubernetes.use_secret_as_env(task, secret_name=secret, secret_key_to_env=CLUSTER.minio_secret_env)
    uid = CLUSTER.run_as_user
    kubernetes.set_security_context(task, run_as_user=uid, run_as_group=uid, run_as_non_root=True)
    return task


def label(task: dsl.PipelineTask, *keys: str) -> dsl.PipelineTask:
    """Pod labels the egress NetworkPolicies select on (kangaroo.k8s.pod_labels)."""
    for key in keys:
        kubernetes.add_pod_label(task, key, pod_labels.ENABLED)
    return task


def config_step(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """The config resolver: CPU pool, the image's user, no Secret; never cached, so every run records the
    code version of the image it ran in."""
    uid = CLUSTER.run_as_user
    kubernetes.set_security_context(task, run_as_user=uid, run_as_group=uid, run_as_non_root=True)
    return place_on(task, CLUSTER.cpu_pool).set_caching_options(False)


def cpu_step(task: dsl.PipelineTask, cache: bool = True) -> dsl.PipelineTask:
    place_on(with_minio_credentials(task), CLUSTER.cpu_pool)
    return task.set_caching_options(cache)


def untrusted_step(task: dsl.PipelineTask, *egress: str) -> dsl.PipelineTask:
    """A step that decodes uploads: the MinIO user that reads raw/ and writes curated/ only, and no egress
    beyond DNS, MinIO and KFP (plus EGRESS labels)."""
    place_on(with_minio_credentials(task, CLUSTER.curation_minio_secret), CLUSTER.cpu_pool)
    return label(task, pod_labels.UNTRUSTED_INPUT, *egress)


def gpu_step(task: dsl.PipelineTask, gpus) -> dsl.PipelineTask:
    place_on(label(with_minio_credentials(task), pod_labels.HTTPS_EGRESS), CLUSTER.gpu_pool, gpus=gpus)
    # DataLoader workers and NCCL share tensors through /dev/shm, 64 MiB in a plain pod.
    kubernetes.empty_dir_mount(
        task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=SHM_SIZE
    )
    # Pre-empted GPU nodes: retry, and the stage resumes from its checkpoint on the shared PVC.
    return task.set_retry(num_retries=CLUSTER.retries, backoff_duration="60s", backoff_factor=2.0)


def trainjob_launcher_step(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """A CPU task that submits and follows a TrainJob: no GPU request, the shared PVC (the job's files), and
    its own pod's name/uid/namespace (downward API) for the job's ownerReference. A retry (the CPU node went
    away) follows the job already running; a Failed job stays failed."""
    label(cpu_step(task), pod_labels.HTTPS_EGRESS)  # the Kubernetes API
    kubernetes.mount_pvc(task, pvc_name=CLUSTER.checkpoint_pvc, mount_path=CLUSTER.checkpoint_mount)
    # the only task holding a token that may create jobs (= pods): the trainer account's
    kubernetes.use_secret_as_volume(
        task, secret_name=CLUSTER.trainer_token_secret, mount_path=CLUSTER.trainer_token_mount
    )
    for field, variable in POD_ENV.items():
        kubernetes.use_field_path_as_env(task, env_name=variable, field_path=f"metadata.{field}")
    return task.set_retry(num_retries=CLUSTER.retries, backoff_duration="60s", backoff_factor=2.0)


@dsl.pipeline(
    name="kangaroo-flow",
    description="Curate, gate, version, train (five-stage curriculum) and evaluate Kangaroo.",
)
def kangaroo_pipeline(
    input_uri: str,
    corpus_uri: str,
    benchmark: str,
    profile: str = COMPILE_TIME_PARAMS.profile,
    params_yaml: str = project_params_text(),
    overrides: list[str] = [],  # noqa: B006 (KFP reads parameter defaults from the signature)
    stages: list[str] = list(CURRICULUM),  # noqa: B006
    resume_from: str = "",
    num_gpus: int = 1,
    num_nodes: int = 1,
    checkpoint_root: str = CLUSTER.checkpoint_mount,
    dvc_remote: str = "",
    packed_uri: str = "",
):
    """Pipeline parameters (all settable in the Kubeflow UI):

    input_uri: folder or s3:// prefix of raw videos. corpus_uri: folder or s3:// prefix with images.jsonl
    and questions.jsonl (image-text and instruction data). benchmark: evaluation spec, e.g.
    `sample:<corpus>` or `videomme:s3://...`. profile / params_yaml / overrides: the config (params.yaml's
    content at compile time by default). stages: curriculum stages to run (skipped ones pass their input
    model through on the CPU pool). resume_from: a model folder or s3:// URL to start the first stage from.
    num_gpus / num_nodes: per training stage (GPUs per node); from `cluster.cluster_job_min_nodes` nodes (2)
    a stage runs as a Kubeflow Trainer v2 TrainJob launched by a CPU task. dvc_remote: DVC remote for the
    dataset version ('' = `storage.dvc_remote` of the profile). packed_uri: an s3:// prefix the packed
    training data is also uploaded to, and the stages stream from ('' = the versioned artifact).
    The config parameters reach only the first task, which gives each step its own part.
    """
    run_summary = cpu_step(publish_run_summary(), cache=False).set_display_name("run summary")
    with dsl.ExitHandler(run_summary, name="kangaroo-run"):
        # Each step's settings + the code version: a task's cache key changes only with its own config.
        resolved = config_step(
            resolve_step_configs(params_yaml=params_yaml, profile=profile, overrides=overrides)
        ).set_display_name("resolve config")
        config = resolved.outputs
        # Needs only the corpus: runs beside curation (a no-op record when a pretrained tower is configured).
        tower = cpu_step(
            vision_tower_pretraining(corpus_uri=corpus_uri, step_config=config["pretrain_vision"])
        )
        tower.set_display_name("pre-train vision tower")
        # The CLIP-family model captions are scored with (trained on the stills over the tower when tiny).
        aligner = cpu_step(
            alignment_model_preparation(
                corpus_uri=corpus_uri, tower=tower.outputs["tower"], step_config=config["alignment_model"]
            )
        ).set_display_name("alignment model")
        # Uploads enter by content: a new or rewritten video under input_uri changes the plan's cache key.
        fingerprint = untrusted_step(fingerprint_inputs(input_uri=input_uri, step_config=config["curate"]))
        fingerprint.set_caching_options(False).set_display_name("fingerprint inputs")
        plan = untrusted_step(
            plan_shards(
                input_uri=input_uri,
                input_fingerprint=fingerprint.output,
                step_config=config["curate"],
            )
        ).set_display_name("plan shards")
        with dsl.ParallelFor(plan.outputs["Output"], name="shards") as shard_index:
            shard = untrusted_step(
                shard_curation(
                    manifest=plan.outputs["manifest"], shard_index=shard_index, step_config=config["curate"]
                )
            ).set_display_name("curate shard")
            # A shard fails only on infrastructure (store/disk down past its retry budget): retry it later.
            shard.set_retry(num_retries=CLUSTER.retries, backoff_duration="120s", backoff_factor=2.0)
            # Captioning calls remote services: retried, and a retry resumes from the checkpoint volume.
            shard_captions = untrusted_step(
                shard_captioning(
                    curated=shard.outputs["curated"],
                    shard_index=shard_index,
                    alignment_model=aligner.outputs["alignment_model"],
                    resume_root=checkpoint_root,
                    step_config=config["caption"],
                ),
                pod_labels.CAPTIONER_EGRESS,
            ).set_display_name("caption shard")
            shard_captions.set_retry(num_retries=CLUSTER.retries, backoff_duration="30s", backoff_factor=2.0)
            kubernetes.mount_pvc(
                shard_captions, pvc_name=CLUSTER.checkpoint_pvc, mount_path=CLUSTER.checkpoint_mount
            )
        merged = cpu_step(merge_curation(shards=dsl.Collected(shard.outputs["curated"])))
        merged.set_display_name("merge ledgers")
        captioned = cpu_step(
            caption_merge(
                curated=merged.outputs["curated"], shards=dsl.Collected(shard_captions.outputs["captioned"])
            )
        ).set_display_name("merge captions")
        # The gate decodes key frames of uploads (alignment scores, the report's frame strips).
        gate = untrusted_step(
            quality_gate(
                dataset=captioned.outputs["dataset"],
                alignment_model=aligner.outputs["alignment_model"],
                step_config=config["validate"],
            )
        ).set_display_name("quality gate")

        with dsl.If(gate.outputs["Output"] == True, name="gate-passed"):  # noqa: E712 (KFP condition)
            packed = cpu_step(
                pack_data(
                    corpus_uri=corpus_uri,
                    dataset=captioned.outputs["dataset"],
                    publish_uri=packed_uri,
                    step_config=config["pack"],
                )
            ).set_display_name("pack training data")
            versioned = cpu_step(
                dataset_versioning(
                    dataset=packed.outputs["packed"], remote=dvc_remote, step_config=config["version_dataset"]
                ),
                cache=True,
            ).set_display_name("version dataset")
            plan = cpu_step(
                plan_training(stages=stages, num_nodes=num_nodes, step_config=config["placement"])
            )
            plan.set_display_name("plan stage placement")
            model = None  # the previous stage's model: from whichever placement branch ran
            for stage in CURRICULUM:
                placement = plan.outputs[stage]
                stage_inputs = dict(
                    stage=stage,
                    stages=stages,
                    data=versioned.outputs["versioned"],
                    data_uri=packed_uri,
                    dataset_version=versioned.outputs["Output"],
                    resume_from=resume_from,
                    checkpoint_root=checkpoint_root,
                    num_gpus=num_gpus,
                    num_nodes=num_nodes,
                    **(
                        {"init_model": model}
                        if model is not None
                        else {"vision_tower": tower.outputs["tower"]}
                    ),
                    step_config=config[f"train_{stage}"],
                )
                # Left out of `stages`: the input model passes through on the CPU pool, no GPU pod starts.
                with dsl.If(placement == "skip", name=f"{stage}-skipped"):
                    skipped = cpu_step(stage_training(**stage_inputs))
                    skipped.set_display_name(f"{stage} (skipped)")
                # Across nodes: a CPU task submits a TrainJob and follows it; the GPUs are the job's.
                with dsl.Elif(placement == "cluster_job", name=f"{stage}-trainjob"):
                    launched = trainjob_launcher_step(
                        stage_training(cluster_job=True, placement_config=config["placement"], **stage_inputs)
                    )
                    launched.set_display_name(f"{stage} (TrainJob)")
                with dsl.Else(name=f"{stage}-pod"):
                    in_pod = gpu_step(stage_training(**stage_inputs), gpus=num_gpus).set_display_name(stage)
                    kubernetes.mount_pvc(
                        in_pod, pvc_name=CLUSTER.checkpoint_pvc, mount_path=CLUSTER.checkpoint_mount
                    )
                model = dsl.OneOf(
                    skipped.outputs["model"], launched.outputs["model"], in_pod.outputs["model"]
                )
            evaluation = gpu_step(
                model_evaluation(model=model, benchmark=benchmark, step_config=config["evaluate"]), gpus=1
            ).set_display_name("evaluate")
            registered = cpu_step(
                register_model(
                    model=model,
                    accuracy=evaluation.outputs["Output"],
                    dataset_version=versioned.outputs["Output"],
                )
            ).set_display_name("register model")
            listed = list_run_outputs(
                quality_report=gate.outputs["report"],
                quality_summary=gate.outputs["summary"],
                model=registered.outputs["registered"],
                results=evaluation.outputs["results"],
            )
            cpu_step(listed, cache=False).set_display_name("run outputs")
        with dsl.Else(name="gate-failed"):
            cpu_step(stop_on_failed_gate(summary=gate.outputs["summary"])).set_display_name(
                "stop: gate failed"
            )
