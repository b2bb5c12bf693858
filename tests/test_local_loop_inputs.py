"""KFP's local runner with pipelines.local_loop_inputs: a ParallelFor body gets the loop item *and* the other
task outputs passed into the loop (kfp 2.17.0 alone hands every such input the loop item)."""

from kfp import dsl, local

from pipelines import local_loop_inputs


@dsl.component
def settings() -> str:
    return '{"scale": 10}'


@dsl.component
def shard_indices() -> list[int]:
    return [0, 1, 2]


@dsl.component
def scaled(step_config: str, index: int) -> int:
    import json

    return json.loads(step_config)["scale"] * index


@dsl.component
def total(values: list[int]) -> int:
    return int(sum(values))


@dsl.pipeline
def loop_with_config() -> int:
    config = settings()
    shards = shard_indices()
    with dsl.ParallelFor(shards.output) as index:
        part = scaled(step_config=config.output, index=index)
    return total(values=dsl.Collected(part.output)).output


def test_loop_body_gets_its_config_and_its_item(tmp_path):
    local_loop_inputs.install()
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path), enable_caching=False
    )
    run = loop_with_config()
    assert run.output == 30  # 10 * (0 + 1 + 2)
