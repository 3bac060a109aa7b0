"""Workloads: the async driver, its gates, the run shapes, and the phase engine.

Data flows one way: a :class:`PhaseEngine` repeats a workload shape in waves;
the shape turns each wave into :class:`~chaos.sut.base.RunRequest` s; the
:class:`Driver` runs them through a :class:`~chaos.sut.base.RunClient` and
writes every invoke and outcome into the :class:`~chaos.record.history.History`.
"""

from chaos.record.vocabulary import OP_RUN_STATUS
from chaos.workload.circuits import (
    ROLES,
    CircuitPool,
    CircuitWorkload,
    Drain,
    DrainResult,
    circuit_prompt,
    circuit_requests,
)
from chaos.workload.driver import CutPlan, Driver, RunResult
from chaos.workload.gates import CapPolicy, RetryPolicy, SlotGate, UserGate
from chaos.workload.lag import LagSampler
from chaos.workload.phases import (
    Phase,
    PhaseEngine,
    WaveSummary,
    parse_phases,
    percentile,
    summarize_wave,
)
from chaos.workload.shapes import OverCapWorkload, SingleAgentWorkload, WaveContext, Workload

__all__ = [
    "OP_RUN_STATUS",
    "ROLES",
    "CapPolicy",
    "CircuitPool",
    "CircuitWorkload",
    "CutPlan",
    "Drain",
    "DrainResult",
    "Driver",
    "LagSampler",
    "OverCapWorkload",
    "Phase",
    "PhaseEngine",
    "RetryPolicy",
    "RunResult",
    "SingleAgentWorkload",
    "SlotGate",
    "UserGate",
    "WaveContext",
    "WaveSummary",
    "Workload",
    "circuit_prompt",
    "circuit_requests",
    "parse_phases",
    "percentile",
    "summarize_wave",
]
