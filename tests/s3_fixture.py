"""A real S3 API on loopback for the object-storage lake tests (moto's server mode).

Loaded from tests/conftest.py (`pytest_plugins`).

- `s3_server` (session) starts `moto.server.ThreadedMotoServer` on 127.0.0.1 with a free port.
  It is moto's HTTP server, the one `moto_server` runs, installed from the package registry with
  the project's dev dependencies. The fixture points the AWS SDK's environment at it
  (`AWS_ENDPOINT_URL`, test credentials). With pytest-xdist, each worker starts its own server.
- `s3_bucket` (function) creates a new bucket, unique per test, and answers its name.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}.items():
            patch.setenv(name, value)
        yield endpoint
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    import boto3

    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name
