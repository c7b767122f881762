"""Local real services for the real stack: a 3-node Kafka cluster, a Cassandra node, Redis.

``ServiceManager(ServicesConfig()).up()`` starts them from the project's own files (Kafka and
Cassandra jars from Maven Central, Debian's redis-server); ``smartmeter services`` is the CLI.
"""

from smartmeter_lib.services.base import ServiceStatus
from smartmeter_lib.services.config import SERVICE_NAMES, ServicesConfig
from smartmeter_lib.services.manager import ServiceManager

__all__ = ["SERVICE_NAMES", "ServiceManager", "ServiceStatus", "ServicesConfig"]
