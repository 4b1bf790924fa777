"""Exit 0 when the Kafka broker at BOOTSTRAP answers a metadata request.

Usage: kafka_ready.py BOOTSTRAP TIMEOUT_SECONDS

A broker in KRaft mode lists itself in metadata only once it has registered
with the controller and is unfenced, so a non-empty broker list means it is
ready to host partitions.
"""

import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient


def main() -> int:
    bootstrap, timeout = sys.argv[1], float(sys.argv[2])
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "log_level": 0,
            "socket.connection.setup.timeout.ms": int(timeout * 1000),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return 1
    return 0 if metadata.brokers else 1


if __name__ == "__main__":
    sys.exit(main())
