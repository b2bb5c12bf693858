"""KFP pipelines: the DAG (kangaroo_pipeline), its compiler, the local runner and the cluster submitter."""
