"""Does a build start at all?  One replica on a fresh Postgres, until ``/healthz`` answers.

This tells the two outcomes the scenarios cannot: a process that exits before
``/healthz`` answers is **broken** (the patch did not make a runnable target),
one that stays up but never gets healthy is **detected** (killed).  The
replica starts exactly as in a cluster (:class:`LoomcycleContainer`), so it
migrates, registers and serves with the suite's own settings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from testcontainers.core.exceptions import ContainerStartException

from chaos.cluster.spec import Images
from chaos.containers import SuitePostgresContainer, suite_network
from chaos.provision.common import one_line
from chaos.provision.images import resolve_images
from chaos.sut.loomcycle.container import LoomcycleContainer

PG_ALIAS = "pg"
#: Migrations on an empty database plus registration take a few seconds here.
PROBE_TIMEOUT_S = 60


class Start(enum.StrEnum):
    HEALTHY = "healthy"
    EXITED = "exited"  # the process ended before /healthz answered: broken
    NEVER_HEALTHY = "never_healthy"  # up, but /healthz never said ready: detected


@dataclass(frozen=True)
class StartResult:
    start: Start
    detail: str = ""


def _log_tail(replica: LoomcycleContainer, lines: int = 8) -> str:
    try:
        out, err = replica.get_logs()
    except Exception:  # the container may be gone: the status line is enough then
        return ""
    text = (out + err).decode(errors="replace")
    return " | ".join(text.strip().splitlines()[-lines:])


def probe_start(image: str, session_id: str, timeout_s: int = PROBE_TIMEOUT_S) -> StartResult:
    """Start ``image`` as replica ``r1`` on its own Postgres and network; remove both after."""
    postgres = resolve_images(Images()).postgres
    with (
        suite_network(session_id) as net,
        SuitePostgresContainer(
            postgres, session_id=session_id, network=net, network_aliases=[PG_ALIAS]
        ) as pg,
    ):
        replica = LoomcycleContainer(
            pg.network_dsn(PG_ALIAS),
            replica_id="r1",
            image=image,
            session_id=session_id,
            network=net,
            startup_timeout=timeout_s,
        )
        try:
            replica.start()
            return StartResult(Start.HEALTHY)
        except Exception as exc:  # testcontainers raises several types on a failed wait
            try:
                container = replica.get_wrapped_container()
            except ContainerStartException:
                return StartResult(Start.EXITED, f"container not created: {one_line(str(exc))}")
            container.reload()
            state = container.attrs.get("State") or {}
            tail = _log_tail(replica)
            if state.get("Status") in ("exited", "dead") or not state.get("Running", False):
                code = state.get("ExitCode")
                return StartResult(Start.EXITED, one_line(f"exit code {code}: {tail}", 400))
            return StartResult(Start.NEVER_HEALTHY, one_line(f"{exc}: {tail}", 400))
        finally:
            replica.stop()


@dataclass(frozen=True)
class ContainerProber:
    """:func:`probe_start` with the campaign's session id in every label."""

    session_id: str

    def probe(self, image: str) -> StartResult:
        return probe_start(image, self.session_id)
