"""One descriptor per job, in one table: the single place a job's entry points read.

A :class:`Job` names the job's settings builder, its plan and run functions
(:mod:`david_data.engine`'s contract), the kind of executor its units need and how many
workers. Every entry point derives from it:

- the CLI reads the builder's parameters (:meth:`Job.options`) from its parsed flags,
  builds the settings (which validates them) and runs the job here or as a flow run;
- each flow (``david_data/flows/<name>.py``) takes the same names as parameters, plus
  where it runs (``dask_address``, ``progress``), and builds the settings the same way;
- the pipeline (:mod:`david_data.pipeline`) hands each step its options, which run here
  or as a subflow through the same builder.

``tests/foundation/test_jobs.py`` checks that the flows' parameters and the CLI's flags
are exactly these options, so that they cannot drift.

Descriptors are built on first use (:func:`job`): importing a job's package costs
seconds, and a command needs only its own.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from .engine import Executor, make_executor

if TYPE_CHECKING:
    from .browse import BrowsePlan, BrowseReport, BrowseSettings
    from .convert.plan import ConvertPlan, ConvertSettings
    from .convert.report import ConversionReport
    from .convert.verify_store import VerifyStorePlan, VerifyStoreSettings
    from .convert.verify_store import VerifyStoreReport as StoreVerifyReport
    from .fetch.plan import FetchPlan, FetchSettings
    from .fetch.report import FetchReport
    from .fetch.verify import FetchVerifyPlan, FetchVerifyReport
    from .infer.evaluate import EvalSettings, EvaluationPlan, EvaluationReport
    from .infer.into_run import RunPlan, RunReport, RunSettings
    from .infer.plan import InferencePlan, InferSettings
    from .infer.report import InferenceReport
    from .mirror import (
        MirrorPlan,
        MirrorReport,
        MirrorSettings,
        VerifyPlan,
        VerifyReport,
        VerifySettings,
    )
    from .progress import Progress

S = TypeVar("S")
P = TypeVar("P")
R = TypeVar("R")
P_in = TypeVar("P_in", contravariant=True)
R_out = TypeVar("R_out", covariant=True)

ExecutorKind = Literal["threads", "processes"]

RUN_PARAMETERS = ("dask_address", "progress")
"""Flow parameters that say where and how a job runs, not what it does."""
SECRET_OPTIONS = ("storage_options", "source_options")
"""Options that carry credentials (fsspec options): secrets in a flow run's parameters."""


class RunFn(Protocol[P_in, R_out]):
    """``run_<job>(plan, executor, progress=...) -> report``."""

    def __call__(self, plan: P_in, executor: Executor, *, progress: Progress = ...) -> R_out: ...


@dataclass(frozen=True, kw_only=True)
class Job(Generic[S, P, R]):
    """What a job is, for every entry point (see the module docstring)."""

    name: str
    """The flow module ``david_data.flows.<name>`` and its ``<name>_flow``."""
    settings: Callable[..., S]
    """Plain options (numbers may be text, as a deployment's ``--param`` gives them) ->
    validated settings; its keyword parameters are the job's options."""
    plan: Callable[[S], P]
    run: RunFn[P, R]
    executor: ExecutorKind
    """Where this machine runs the units: threads (I/O-bound) or processes (CPU-bound)."""
    workers: Callable[[P], int]
    """Units at once on this machine (a Dask cluster runs as many as it has threads)."""
    internal: frozenset[str] = frozenset()
    """Parameters of ``settings`` that no entry point sets (tuning, tests)."""
    dask: bool = True
    """Whether its units may run on a Dask cluster (``--dask-address``)."""
    live_progress: bool = False
    """Whether its flow draws progress bars (a ``progress`` parameter) instead of log lines."""

    def options(self) -> tuple[str, ...]:
        """The job's options: what its CLI flags and its flow's parameters are named."""
        return options_of(self.settings, self.internal)

    def flow_parameters(self) -> tuple[str, ...]:
        """The parameters its flow takes: its options, then where it runs."""
        run = ("dask_address",) * self.dask + ("progress",) * self.live_progress
        return self.options() + run

    @contextlib.contextmanager
    def executor_for(self, plan: P, dask_address: str | None = None) -> Iterator[Executor]:
        """This job's executor on this machine, or the Dask cluster at ``dask_address``."""
        with make_executor(
            self.executor, self.workers(plan), dask_address=dask_address if self.dask else None
        ) as executor:
            yield executor

    def run_here(
        self, plan: P, *, progress: Progress | None = None, dask_address: str | None = None
    ) -> R:
        """Run ``plan`` from this process (units on :meth:`executor_for`)."""
        from .progress import NullProgress

        with self.executor_for(plan, dask_address) as executor:
            return self.run(plan, executor, progress=progress or NullProgress())


def options_of(builder: Callable[..., Any], internal: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The keyword parameters of a settings builder (a dataclass or a function), in order."""
    return tuple(
        name
        for name, p in inspect.signature(builder).parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in internal
    )


def options_from_flow(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A flow's parameters (its ``locals()``) as its job's options: secrets unwrapped
    (Prefect's ``SecretDict``), a secret left out (None) left to the settings' default,
    where it runs (:data:`RUN_PARAMETERS`) left out."""
    return {
        name: value.get_secret_value() if hasattr(value, "get_secret_value") else value
        for name, value in parameters.items()
        if name not in RUN_PARAMETERS and not (value is None and name in SECRET_OPTIONS)
    }


def flow_arguments(
    options: Mapping[str, Any],
    accepted: Collection[str],
    *,
    secret: Callable[[dict[str, Any]], Any],
    dask_address: str | None,
    progress: bool,
) -> dict[str, Any]:
    """The arguments to call a job's flow with (its parameters are ``accepted``): its
    options, fsspec options wrapped by ``secret`` (hidden in the Prefect UI; None when
    empty), and where it runs when the flow takes those."""
    arguments = {
        name: (secret(dict(value)) if value else None) if name in SECRET_OPTIONS else value
        for name, value in options.items()
    }
    run = {"dask_address": dask_address, "progress": progress}
    return arguments | {name: value for name, value in run.items() if name in accepted}


# One factory per job. To add a job: its package's settings, plan and run; a factory
# here and its line in JOBS; a flow module (david_data/flows/<name>.py); a CLI command.


@functools.cache
def mirror() -> Job[MirrorSettings, MirrorPlan, MirrorReport]:
    from .mirror import MirrorSettings, plan_mirror, run_mirror
    from .mirror.run import EXECUTOR

    return Job(
        name="mirror",
        settings=MirrorSettings.from_options,
        plan=plan_mirror,
        run=run_mirror,
        executor=EXECUTOR,
        workers=lambda plan: plan.settings.jobs,
        dask=False,
        live_progress=True,
    )


@functools.cache
def verify() -> Job[VerifySettings, VerifyPlan | FetchVerifyPlan, VerifyReport | FetchVerifyReport]:
    from .mirror import VerifySettings
    from .mirror.verify import EXECUTOR, plan_folder_verify, run_folder_verify

    return Job(
        name="verify",
        settings=VerifySettings,
        plan=plan_folder_verify,
        run=run_folder_verify,
        executor=EXECUTOR,
        workers=lambda plan: plan.settings.jobs,
        internal=frozenset({"record"}),
    )


@functools.cache
def fetch() -> Job[FetchSettings, FetchPlan, FetchReport]:
    from .fetch.plan import fetch_settings, plan_fetch
    from .fetch.run import run_fetch

    return Job(
        name="fetch",
        settings=fetch_settings,
        plan=plan_fetch,
        run=run_fetch,
        executor="threads",
        workers=lambda plan: plan.settings.jobs,
    )


def _run_convert(
    plan: ConvertPlan, executor: Executor, *, progress: Progress | None = None
) -> ConversionReport:
    # Imported when a conversion runs: the decoders (OpenCV, OpenEXR) are heavy, and
    # 'convert --dry-run' or a refused option needs none of them.
    from .convert.run import run_convert

    return run_convert(plan, executor, progress=progress)


@functools.cache
def convert() -> Job[ConvertSettings, ConvertPlan, ConversionReport]:
    from .convert.plan import convert_settings, plan_convert
    from .convert.units import EXECUTOR

    return Job(
        name="convert",
        settings=convert_settings,
        plan=plan_convert,
        run=_run_convert,
        executor=EXECUTOR,
        workers=lambda plan: plan.settings.workers,
        internal=frozenset({"policy"}),
    )


@functools.cache
def verify_store() -> Job[VerifyStoreSettings, VerifyStorePlan, StoreVerifyReport]:
    from .convert.verify_store import (
        EXECUTOR,
        VerifyStoreSettings,
        plan_verify_store,
        run_verify_store,
    )

    return Job(
        name="verify_store",
        settings=VerifyStoreSettings,
        plan=plan_verify_store,
        run=run_verify_store,
        executor=EXECUTOR,
        workers=lambda plan: plan.settings.workers,
    )


@functools.cache
def infer() -> Job[InferSettings, InferencePlan, InferenceReport]:
    from .infer.plan import InferSettings, plan_inference
    from .infer.run import run_inference

    return Job(
        name="infer",
        settings=InferSettings,
        plan=plan_inference,
        run=run_inference,
        executor="threads",
        workers=lambda plan: plan.settings.workers,
        internal=frozenset({"io_threads", "model_threads"}),
    )


@functools.cache
def evaluate() -> Job[EvalSettings, EvaluationPlan, EvaluationReport]:
    from .infer.evaluate import EvalSettings, plan_evaluation, run_evaluation

    return Job(
        name="evaluate",
        settings=EvalSettings,
        plan=plan_evaluation,
        run=run_evaluation,
        executor="threads",
        workers=lambda plan: 1,  # a unit already keeps the model busy (io threads around it)
        internal=frozenset({"io_threads"}),
    )


@functools.cache
def infer_run() -> Job[RunSettings, RunPlan, RunReport]:
    from .infer.into_run import RunSettings, plan_run, run_into_store

    return Job(
        name="infer_run",
        settings=RunSettings,
        plan=plan_run,
        run=run_into_store,
        executor="threads",
        workers=lambda plan: plan.settings.workers,
        internal=frozenset({"io_threads"}),
    )


@functools.cache
def browse() -> Job[BrowseSettings, BrowsePlan, BrowseReport]:
    from .browse import BrowseSettings, plan_browse, run_browse

    return Job(
        name="browse",
        settings=BrowseSettings,
        plan=plan_browse,
        run=run_browse,
        executor="processes",
        workers=lambda plan: plan.settings.workers,
    )


JOBS: dict[str, Callable[[], Job[Any, Any, Any]]] = {
    "mirror": mirror,
    "verify": verify,
    "fetch": fetch,
    "convert": convert,
    "verify_store": verify_store,
    "infer": infer,
    "infer_run": infer_run,
    "evaluate": evaluate,
    "browse": browse,
}
"""Every job by name (its flow module's name)."""


def job(name: str) -> Job[Any, Any, Any]:
    """The job called ``name`` (a key of :data:`JOBS`)."""
    return JOBS[name]()
