"""The three-node cluster's one id (deploy/kafka/cluster.sh): made whole or not at all, since
nodes given an empty id each format one of their own and the quorum never forms."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def cluster_up(tmp_path: Path, java: str) -> subprocess.CompletedProcess[str]:
    """`cluster.sh up` with `java` as the JDK's (a script), on jars already resolved."""
    bin_dir, libs = tmp_path / "bin", tmp_path / "libs"
    bin_dir.mkdir(exist_ok=True)
    libs.mkdir(exist_ok=True)
    (libs / ".resolved").touch()  # newer than pom.xml: `kafka.sh jars` resolves nothing
    fake = bin_dir / "java"
    fake.write_text(f"#!/bin/sh\n{java}\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMEUSE_", "KAFKA_"))}
    env |= {
        "PATH": f"{bin_dir}:{env['PATH']}",
        "KAFKA_HOME": str(tmp_path / "cluster"),
        "KAFKA_LIBS": str(libs),
        "KAFKA_CLUSTER_PORT": "25510",
        "SECRETS_DIR": str(tmp_path / "secrets"),
    }
    return subprocess.run(
        ["deploy/kafka/cluster.sh", "up"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_cluster_id_that_could_not_be_made_leaves_no_empty_one_for_the_next_up(tmp_path):
    done = cluster_up(tmp_path, "echo 'Error: no JDK here' >&2; exit 1")
    assert done.returncode != 0
    assert "no cluster id made" in done.stderr and "no JDK here" in done.stderr
    assert list((tmp_path / "cluster").iterdir()) == []  # nor a half-written temporary file


def test_an_empty_cluster_id_left_by_an_earlier_up_is_made_again_not_used(tmp_path):
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "cluster-id").touch()
    done = cluster_up(tmp_path, "exit 1")
    assert done.returncode != 0
    assert "no cluster id made" in done.stderr  # not three nodes started with ids of their own
