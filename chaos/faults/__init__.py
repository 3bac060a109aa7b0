"""Nemeses: faults with a proven effect and a proven heal.

Use :func:`injected` for a block with the fault in force::

    async with injected(Kill(container), history):
        ...  # the effect is proven here; the heal is proven on the way out

A state machine drives the same phases step by step through
:mod:`chaos.faults.phases` (the one writer of the phase records), and
:func:`prove_effect`/:func:`prove_heal` re-prove a fault already in force.
"""

from chaos.faults.base import (
    Fault,
    FaultHealFailed,
    FaultNotProven,
    injected,
    prove_effect,
    prove_heal,
    self_test,
)
from chaos.faults.http_path import HttpPath
from chaos.faults.link import (
    Bandwidth,
    BlackHole,
    Latency,
    LimitData,
    LinkFault,
    LinkPath,
    LinkTarget,
    PgPath,
    ResetCut,
    ResetPeer,
    SlowClose,
    Stall,
    ToxicFault,
)
from chaos.faults.partition import NetworkPartition
from chaos.faults.probes import PathResult, PgCredentials, Probe, http_probe, pg_probe
from chaos.faults.process import (
    ContainerTarget,
    Freeze,
    GracefulStop,
    Kill,
    PostgresRestart,
    Restart,
    pg_boot_time,
)
from chaos.faults.resources import (
    HEARTBEAT_SWEEPER_LOCK_KEY,
    REPLICAS_SWEEPER_LOCK_KEY,
    AdvisoryLockHold,
    NginxFdExhaustion,
    PgConnectionExhaustion,
    ReplicaFdExhaustion,
)
from chaos.faults.service import CancelStorm, ProviderErrorStorm

__all__ = [
    "HEARTBEAT_SWEEPER_LOCK_KEY",
    "REPLICAS_SWEEPER_LOCK_KEY",
    "AdvisoryLockHold",
    "Bandwidth",
    "BlackHole",
    "CancelStorm",
    "ContainerTarget",
    "Fault",
    "FaultHealFailed",
    "FaultNotProven",
    "Freeze",
    "GracefulStop",
    "HttpPath",
    "Kill",
    "Latency",
    "LimitData",
    "LinkFault",
    "LinkPath",
    "LinkTarget",
    "NetworkPartition",
    "NginxFdExhaustion",
    "PathResult",
    "PgConnectionExhaustion",
    "PgCredentials",
    "PgPath",
    "PostgresRestart",
    "Probe",
    "ProviderErrorStorm",
    "ReplicaFdExhaustion",
    "ResetCut",
    "ResetPeer",
    "Restart",
    "SlowClose",
    "Stall",
    "ToxicFault",
    "http_probe",
    "injected",
    "pg_boot_time",
    "pg_probe",
    "prove_effect",
    "prove_heal",
    "self_test",
]
