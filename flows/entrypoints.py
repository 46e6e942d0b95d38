"""The Prefect entrypoints that ``deployments/prefect.yaml`` names (``flows/entrypoints.py:<flow>``).

The flows themselves live in the installed package, :mod:`david_data.flows` (the
``[prefect]`` extra); this file, which Prefect loads by path from a checkout, only
re-exports them. It is not installed: a ``pip install`` puts no ``flows`` module into
site-packages.
"""

from david_data.flows.browse import browse_flow
from david_data.flows.compare import compare_flow
from david_data.flows.convert import convert_flow
from david_data.flows.evaluate import evaluate_flow
from david_data.flows.fetch import fetch_flow
from david_data.flows.infer import infer_flow
from david_data.flows.infer_run import infer_run_flow
from david_data.flows.mirror import mirror_flow
from david_data.flows.pipeline import pipeline_flow
from david_data.flows.query import query_flow

__all__ = [
    "compare_flow",
    "browse_flow",
    "convert_flow",
    "evaluate_flow",
    "fetch_flow",
    "infer_flow",
    "infer_run_flow",
    "mirror_flow",
    "pipeline_flow",
    "query_flow",
]
