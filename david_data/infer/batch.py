"""Batch inference over an image collection: plan what is left, run it batch by batch.

Plan, then run (one engine, see :mod:`david_data.engine`); one module per step::

    plan_inference(settings)                  -> InferencePlan (plan.py): the model checked,
                                                 inputs already done (skipped), batches of
                                                 images to do, inputs rejected up front
    run_inference(plan, executor, progress=)  -> InferenceReport (run.py, report.py); the
                                                 batches run through ``run_units`` (threads
                                                 here, a Dask cluster, Prefect tasks)
    run_batch(unit)                           -> BatchResult (unit.py): a ResultRow per
                                                 input (the work unit: plain data in and out)

Resume is "plan again": inputs whose outputs carry the commit marker of this model and of
the input as it is now (its key: size and mtime or ETag) are skipped; a replaced input is
computed again (results.py). This module is the job's public face: import from here.
"""

from __future__ import annotations

from .plan import (
    TASK_KINDS,
    ImageBatch,
    InferencePlan,
    InferJob,
    InferSettings,
    InferUnit,
    plan_inference,
)
from .report import InferenceReport, finish_run
from .run import run_inference
from .unit import BatchResult, run_batch

__all__ = [
    "TASK_KINDS",
    "BatchResult",
    "ImageBatch",
    "InferJob",
    "InferSettings",
    "InferUnit",
    "InferencePlan",
    "InferenceReport",
    "finish_run",
    "plan_inference",
    "run_batch",
    "run_inference",
]
