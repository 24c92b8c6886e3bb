from tests.daemon.conftest import daemon, served_repo  # noqa: F401
from tests.docker_fixtures import busybox_image, engine  # noqa: F401
