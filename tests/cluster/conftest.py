"""Fixtures of the cluster tests: a private 3-node JetStream cluster per module, a ringex
run replicating to it, and a market config naming a stream of the test's own."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from ringex.cluster.settings import ClusterOptions
from tests.cluster.nats_cluster import NatsCluster
from tests.faults.rig import Run


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory):
    with NatsCluster(tmp_path_factory.mktemp("nats")) as cluster:
        yield cluster


def cluster_config(folder: Path, name: str) -> Path:
    """The shipped config with ``[cluster] name`` set: its own subject and stream."""
    text = resources.files("ringex").joinpath("default_config.toml").read_text()
    text, n = re.subn(r'(?m)^name = "ringex"', f'name = "{name}"', text)
    assert n == 1
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def cluster_options(cluster: NatsCluster, name: str, **more) -> ClusterOptions:
    return ClusterOptions(url=cluster.url, name=name, **more)


def replicated_run(folder: Path, cluster: NatsCluster, name: str,
                   durability: str = "replicated") -> Run:
    """``ringex run --cluster ... --durability ...`` on its own data dir (not started)."""
    config = cluster_config(folder, name)
    return Run(folder / "data", args=("--config", str(config), "--cluster", cluster.url,
                                      "--durability", durability))
