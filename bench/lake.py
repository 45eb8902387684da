"""The S3 side of the benchmark: moto's server in a thread of this process."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
from common import PREFIX
from moto.server import ThreadedMotoServer


class Lake:
    """moto's S3 server in a thread of this process; one fresh bucket per harvest."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per S3 request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint)
        self._buckets = 0

    def new_bucket(self, label: str) -> str:
        self._buckets += 1
        bucket = f"bench-{self._buckets:02d}-{label}"
        self.s3.create_bucket(Bucket=bucket)
        return bucket

    def keys(self, bucket: str) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            yield from (o["Key"] for o in page.get("Contents", []))

    def summary(self, bucket: str) -> dict[str, Any]:
        """The harvester's summary.json of the run in this bucket ({} if it wrote none)."""
        for key in self.keys(bucket):
            if key.startswith(f"{PREFIX}/_harvest/") and key.endswith("/summary.json"):
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                return dict(json.loads(body))
        return {}

    def empty(self, bucket: str) -> None:
        """Free moto's memory: a bucket's objects are of no use once its figures are taken."""
        keys = list(self.keys(bucket))
        for i in range(0, len(keys), 1000):
            objects = [{"Key": k} for k in keys[i : i + 1000]]
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})

    def close(self) -> None:
        self._server.stop()
