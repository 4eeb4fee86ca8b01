"""``python -m deploy.kafka fetch`` | ``python -m deploy.kafka run --data-dir var/kafka --port 9092``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from deploy.kafka.launcher import KafkaNode, kafka_jars


def _run(data_dir: Path, port: int, controller_port: int | None, timeout: float) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers go in before start(): a SIGTERM during the (slow) startup still stops the broker cleanly.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    node = KafkaNode(data_dir, port=port, controller_port=controller_port)
    try:
        node.start(timeout=timeout)
        print(node.bootstrap_servers, flush=True)
        print(f"kafka: running (log {node.log_file}); Ctrl-C to stop", file=sys.stderr, flush=True)
        # Wake up now and then to notice a broker that died on its own.
        while not stop.wait(1.0):
            if not node.is_running():
                print(f"kafka: broker exited; log tail:\n{node.log_tail()}", file=sys.stderr)
                return 1
        return 0
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.kafka", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the Kafka jars into the cache (once)")
    run = sub.add_parser("run", help="run a single-node broker in the foreground")
    run.add_argument("--data-dir", type=Path, default=Path("var/kafka"))
    run.add_argument("--port", type=int, default=9092, help="client port (0: previous or a free one)")
    run.add_argument("--controller-port", type=int, default=None)
    run.add_argument("--timeout", type=float, default=90.0, help="startup timeout, seconds")
    args = parser.parse_args(argv)

    if args.command == "fetch":
        print(kafka_jars())
        return 0
    return _run(args.data_dir, args.port, args.controller_port, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
