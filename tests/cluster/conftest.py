"""The cluster tier's fixtures (defined in tests/cluster_harness.py)."""

from cluster_harness import cluster, cluster_cli, cluster_client, shared_workers, task_queue, workers  # noqa: F401
