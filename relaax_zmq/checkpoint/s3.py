"""``S3Location``: checkpoints under a prefix of an S3 (or S3-compatible) bucket, via boto3."""

from __future__ import annotations

import io
from typing import Any

from relaax_zmq.checkpoint.keys import load_keys_file
from relaax_zmq.checkpoint.location import Entry
from relaax_zmq.checkpoint.naming import parse_name
from relaax_zmq.config.parameter_servers import S3Config
from relaax_zmq.runtime.extras import require_extra


def make_s3_client(config: S3Config) -> Any:
    """A boto3 S3 client for ``config``: its endpoint, region, and keys file or boto3's chain.

    Raises ``MissingExtra`` (``pip install 'relaax-zmq[s3]'``) without boto3.
    """
    boto3 = require_extra("boto3", "s3", "S3 checkpoints (parameter_servers.checkpoint.s3)")

    options: dict[str, Any] = {"endpoint_url": config.endpoint_url, "region_name": config.region}
    if config.keys_file is not None:
        keys = load_keys_file(config.keys_file)
        options.update(
            aws_access_key_id=keys["access_key_id"],
            aws_secret_access_key=keys["secret_access_key"],
            aws_session_token=keys.get("session_token"),
        )
    # a session of its own: boto3's default one caches credentials and is not thread-safe
    return boto3.session.Session().client("s3", **options)


def key_prefix(prefix: str) -> str:
    """``prefix`` as a folder: empty, or ending with one '/'."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


class S3Location:
    """Objects ``<prefix>/<name>`` in ``bucket``; a put is atomic, so bytes go up whole."""

    def __init__(self, config: S3Config, client: Any = None) -> None:
        self.bucket = config.bucket
        self.prefix = key_prefix(config.prefix)
        self.client = client if client is not None else make_s3_client(config)
        self.description = f"s3://{self.bucket}/{self.prefix}"

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def write(self, name: str, data: bytes) -> None:
        """Upload ``data``; large ones go in parts, and the object appears only when all are in."""
        self.client.upload_fileobj(io.BytesIO(data), self.bucket, self.prefix + name)

    def list(self) -> list[Entry]:
        entries = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + "ckpt-"
        )
        for page in pages:
            for item in page.get("Contents", ()):
                name = item["Key"][len(self.prefix) :]
                if parse_name(name) is not None:
                    entries.append(Entry(name, int(item["Size"])))
        return entries

    def read(self, name: str) -> bytes:
        reply = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
        with reply["Body"] as body:
            return body.read()

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def copy_to(self, name: str, target: S3Location) -> None:
        """Copy object ``name`` to the same name under ``target`` (server-side, in parts
        when large); the source stays."""
        source = {"Bucket": self.bucket, "Key": self.prefix + name}
        self.client.copy(source, target.bucket, target.prefix + name)
