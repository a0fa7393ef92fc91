"""Studies: references × conditions → trained models → samples → fidelity and physics, with a cache.

A study is a TOML file (see docs/guide.md, "swnn study"): which references (files or ``builtin:NAME``), which
conditions (stochastic, or controlled target fractions), how many samples of which size, which training
settings, which metrics. :func:`load_study` reads and checks it into a frozen :class:`Study`; :func:`run_study`
checks that every reference loads and every target fraction is reachable *before* any work starts, then, for
each reference and condition, trains once (:func:`swnn.training.train`), generates the samples
(:func:`swnn.generation.generate`) and evaluates the reference, the pieces of its 3D truth
(:mod:`reports.truth`) and the samples with :func:`physics.evaluate`.

Every finished item is stored in ``DIR/cache/`` under a hash of its settings and of the code that made it
(:mod:`~reports.study.plan`), so that rerunning or extending a study redoes only what changed, and an
interrupted study resumes (training itself resumes from its checkpoint). Samples carry the provenance sidecar
of ``swnn generate``. The outputs are ``metrics.csv``, ``summary.csv`` (:mod:`reports.summary`),
``study.json``, ``figures/*.png`` and a self-contained ``index.html``.

Modules: :mod:`~reports.study.settings` (the settings), :mod:`~reports.study.study_file` (reading and checking
a study file), :mod:`~reports.study.references` (loading and
checking the references), :mod:`~reports.study.plan` (the work items and their keys),
:mod:`~reports.study.cache`, :mod:`~reports.study.measures` (descriptors, solvers, fidelity of one volume),
:mod:`~reports.study.stages` (one item at a time), :mod:`~reports.study.rev_stage` (representative volume),
:mod:`~reports.study.runner`, :mod:`~reports.study.tasks` (the items as Dask tasks), :mod:`~reports.study.tables`
and :mod:`~reports.study.outputs`.
"""

from .measures import fidelity
from .outputs import StudyResult
from .references import prepare_study
from .runner import run_study
from .settings import (
    ALL_METRICS,
    CORE_METRICS,
    Condition,
    PhysicsSettings,
    ReferenceSettings,
    Study,
    TrainingSettings,
)
from .stages import Run, SampleRecord
from .study_file import default_study_path, load_study, study_from_dict
from .tables import metrics_frame, timing_table

__all__ = [
    "ALL_METRICS",
    "CORE_METRICS",
    "Condition",
    "PhysicsSettings",
    "ReferenceSettings",
    "Run",
    "SampleRecord",
    "Study",
    "StudyResult",
    "TrainingSettings",
    "default_study_path",
    "fidelity",
    "load_study",
    "metrics_frame",
    "prepare_study",
    "run_study",
    "study_from_dict",
    "timing_table",
]
