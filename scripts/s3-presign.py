#!/usr/bin/env python3
"""Upload a file to an S3-compatible store and print a presigned GET URL.

Usage: s3-presign.py ENDPOINT BUCKET KEY FILE [EXPIRES_SECONDS]

Used by tests/peers/http_client.rs against moto's server on loopback
(`moto_server -H 127.0.0.1 -p PORT`). Dummy credentials: moto does not
check signatures, but it refuses unsigned requests, so everything here is
signed (SigV4) with them. Needs boto3 (`pip install 'moto[server]' boto3`).
"""
import sys

import boto3
from botocore.config import Config


def main() -> int:
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, bucket, key, path = sys.argv[1:5]
    expires = int(sys.argv[5]) if len(sys.argv) == 6 else 3600
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
    )
    s3.create_bucket(Bucket=bucket)
    with open(path, "rb") as f:
        s3.put_object(Bucket=bucket, Key=key, Body=f, ContentType="application/octet-stream")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
    )
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
