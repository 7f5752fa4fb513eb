"""`python -m <package>.serving.job`: batch scoring as a scheduled cloud job (the batch image's
command; infra/terraform schedules it).

Downloads ``SCORE_INPUT_URL`` (a gold-shaped parquet file), scores it with the blessed model in the
image (``serving.batch``) and uploads the predictions to
``SCORE_OUTPUT_URL/predictions-<UTC time>.parquet``, so every run keeps its own file. Both are
fsspec URLs: ``s3://``, ``gs://``, ``abfs://container@account.dfs.core.windows.net/...`` or
``file://`` (the image installs the cloud's filesystem package; credentials come from the job's
identity). The job's request log stays in the container: monitoring reads the predictions.

Exit codes: 0 scored, 2 a variable is missing, a transfer failed or the input is unusable.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from .batch import main as score


class JobError(Exception):
    """The job cannot run: a missing variable or a failed transfer (the message says which)."""


def _url(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise JobError(f"{name} is not set: the scheduled job sets it (infra/terraform)")
    return value


def run(input_url: str, output_url: str, stamp: str | None = None) -> tuple[int, str]:
    """Score ``input_url`` into a new file under ``output_url``; returns (exit code, its URL)."""
    import fsspec

    stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = f"{output_url.rstrip('/')}/predictions-{stamp}.parquet"
    with tempfile.TemporaryDirectory(prefix="score-job-") as tmp:
        local_in = Path(tmp) / "input.parquet"
        local_out = Path(tmp) / "predictions.parquet"
        try:
            source, source_path = fsspec.core.url_to_fs(input_url)
            source.get_file(source_path, str(local_in))
        except (OSError, ValueError, ImportError) as exc:
            raise JobError(f"cannot download SCORE_INPUT_URL {input_url}: {exc}") from None
        code = score(["--input", str(local_in), "--output", str(local_out), "--no-log"])
        if code != 0:
            return code, target
        try:
            dest, dest_path = fsspec.core.url_to_fs(target)
            dest.makedirs(dest_path.rsplit("/", 1)[0], exist_ok=True)
            dest.put_file(str(local_out), dest_path)
        except (OSError, ValueError, ImportError) as exc:
            raise JobError(f"cannot upload the predictions to {target}: {exc}") from None
    return 0, target


def main() -> int:
    try:
        code, target = run(_url("SCORE_INPUT_URL"), _url("SCORE_OUTPUT_URL"))
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if code == 0:
        print(f"predictions uploaded to {target}")
    return code


if __name__ == "__main__":
    sys.exit(main())
