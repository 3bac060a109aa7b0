"""A SIGKILL whose effect is proven at once, for scenarios that act before the reap.

:func:`chaos.faults.replica.kill_replica` proves a kill by the reap (the
survivors stop listing the victim), so its block starts only after the
sweeper ran.  A scenario that must act on the dead owner's runs *before* the
reap (cancels aimed at them while the owner still looks alive, or looks dead
but is not yet reaped) needs the kill proven by what a SIGKILL does at once:
the container is no longer running.  The heal is still proven the way a kill
heals: the container runs again and the survivors list the replica.
"""

from __future__ import annotations

from chaos.cluster.view import ScenarioCluster
from chaos.faults import ContainerTarget, Kill
from chaos.faults.replica import REJOIN_TIMEOUT_S, survivors_list


async def kill_seen_dead(cluster: ScenarioCluster, replica_id: str) -> Kill:
    """SIGKILL ``replica_id``; effect: its container stopped running; heal: restarted
    (same id) and listed again by every answering survivor."""
    listed = survivors_list(cluster, replica_id)
    container = await cluster.container(replica_id)
    targets: list[ContainerTarget] = []

    async def running_and_listed() -> bool:
        state = await targets[0].state()
        # Short-circuit: a dead container is the kill's effect whatever the survivors say
        # (they list it until the reap).
        return state["status"] == "running" and await listed()

    target = ContainerTarget(container.client, container.id, replica_id, running_and_listed)
    targets.append(target)
    fault = Kill(target)
    fault.heal_timeout = REJOIN_TIMEOUT_S
    return fault
