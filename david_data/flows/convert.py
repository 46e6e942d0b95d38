"""Conversion as a Prefect flow: the library's engine, each shard group a Prefect task run
on a pool of processes (or a task of the Dask cluster at ``dask_address``). Parameters
mirror ``david-data convert``."""

from __future__ import annotations

from prefect import flow
from prefect.types import SecretDict

from david_data import jobs
from david_data.convert.report import ConversionReport
from david_data.progress import LogProgress

from ._executor import flow_executor, job_settings, publish, stops_cleanly

CONVERT = jobs.convert()


@flow(name="convert", log_prints=True)
@stops_cleanly
def convert_flow(
    source_url: str,
    store_url: str,
    parts: str | int | list[str] | None = None,
    profile: str | None = None,
    shard_size: str | int | None = None,
    workers: str | int = 1,
    retry_errors: bool = False,
    where: str | None = None,
    ids: str | int | None = None,
    limit: str | int | None = None,
    seed: str | int = 0,
    dask_address: str | None = None,
    storage_options: SecretDict | None = None,
    source_options: SecretDict | None = None,
) -> ConversionReport:
    """Convert ``parts`` of ``source_url`` (a mirror, an extracted folder or the data host's
    base URL) into the store at ``store_url``, only the samples ``where``, ``ids`` and
    ``limit``/``seed`` select when given. Storage options (credentials) are kept secret in
    the Prefect UI."""
    plan = CONVERT.plan(job_settings(CONVERT.settings, locals()))
    print(plan.describe())
    with flow_executor(CONVERT, plan, dask_address=dask_address, retries=1) as ex:
        report = CONVERT.run(plan, ex, progress=LogProgress())
    return publish(report, key="convert-report", description=f"conversion into {store_url}")
