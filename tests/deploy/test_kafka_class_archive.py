"""The brokers' class-data archive (deploy/kafka/launcher.py): made once for this JDK and these jars, mapped by the
brokers started after it, and only ever a saving: a broker given a damaged one starts all the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.kafka.launcher import KAFKA_VERSION, KafkaNode, class_archive, free_port, kafka_jars, prepare_class_archive
from tests.harness import TEST_BROKER_JVM

pytestmark = pytest.mark.broker

# -Xlog:cds writes the JVM's class-sharing steps to the broker's log: mapping a dynamic archive names its regions.
MAPPED = "Mapped dynamic region"


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of its own that holds the real jars (linked, not fetched again), so the archive here is this test's."""
    real = kafka_jars()
    home = tmp_path / "cache" / f"kafka-{KAFKA_VERSION}"
    home.mkdir(parents=True)
    (home / "lib").symlink_to(real, target_is_directory=True)
    (home / ".fetched").write_text((real.parent / ".fetched").read_text())
    monkeypatch.setenv("KAPNET_CACHE_DIR", str(tmp_path / "cache"))
    return home / "lib"


def started_log(data_dir: Path) -> str:
    with KafkaNode(data_dir, port=free_port(), jvm_options=(*TEST_BROKER_JVM, "-Xlog:cds=info")) as node:
        return node.log_tail(200_000)


def test_a_damaged_archive_is_ignored_then_made_again_and_mapped(own_cache: Path, tmp_path: Path) -> None:
    archive = class_archive(own_cache)
    archive.write_bytes(b"not an archive" * 1000)

    assert MAPPED not in started_log(tmp_path / "damaged")  # it started, without the archive

    assert prepare_class_archive() == archive
    made = archive.stat()
    assert made.st_size > 1_000_000
    assert MAPPED in started_log(tmp_path / "mapped")

    assert prepare_class_archive() == archive  # kept: it maps
    assert archive.stat().st_mtime_ns == made.st_mtime_ns
