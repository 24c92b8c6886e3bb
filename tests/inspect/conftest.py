from tests.docker_fixtures import busybox_image, engine  # noqa: F401
