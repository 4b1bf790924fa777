"""Readiness of the S3 gateway: the given buckets exist (made when missing).

    s3_buckets.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET...

Exits 0 once every bucket is listed, 1 otherwise (the gateway is not serving yet)."""

import sys
from urllib.parse import urlparse

from pyarrow import fs


def main() -> int:
    endpoint, access, secret, *buckets = sys.argv[1:]
    url = urlparse(endpoint)
    s3 = fs.S3FileSystem(access_key=access, secret_key=secret, endpoint_override=url.netloc,
                         scheme=url.scheme, region="us-east-1", connect_timeout=3, request_timeout=5,
                         allow_bucket_creation=True)
    for bucket in buckets:
        if s3.get_file_info(bucket).type != fs.FileType.Directory:
            s3.create_dir(bucket)
    found = {i.path for i in s3.get_file_info(fs.FileSelector("", recursive=False))}
    return 0 if set(buckets) <= found else 1


if __name__ == "__main__":
    sys.exit(main())
