"""The nginx open-files loss, measured with real nginx (issue 5).

loomcycle's write-up lost circuits to nginx 500s because the load balancer
had the default ``nofile=1024``.  Here a front nginx proxies 600 concurrent
slow requests (two descriptors each) to an upstream nginx:

* under a low limit (256) it must lose some of them, and its log must say
  "Too many open files": the fault's effect, proven by its cause;
* under the high limit the suite uses (16384) it must lose none and log no
  such line: the control, and the proof that the fix heals it.
"""

from __future__ import annotations

import pytest

from chaos.bench.nofile_rig import HIGH, LOW, nofile_rig, raise_own_nofile_limit

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

#: 600 requests need ~1200 descriptors in the front: about 5x the low limit, 1/13 of the high.
N = 600


@pytest.fixture(autouse=True)
def _driver_can_hold_n_sockets() -> None:
    """The driver must not run out of descriptors before nginx does, or the test lies."""
    own = raise_own_nofile_limit()
    if own < N + 64:
        pytest.skip(f"this process may open only {own} files; {N} sockets are needed")


async def test_low_nofile_loses_requests_with_emfile_in_the_log(chaos_session_id: str) -> None:
    async with nofile_rig(f"{chaos_session_id}-low") as rig:
        outcome = await rig.measure(LOW, N, request_timeout=30, deadline=45)
    print(outcome.summary())
    assert outcome.lost > 0, f"a 256-file nginx served {N} slow requests: {outcome.summary()}"
    assert outcome.emfile_lines > 0, f"losses without EMFILE in the log: {outcome.summary()}"
    # The write-up's symptom: the client sees 500s (nginx could not open the upstream socket).
    assert outcome.status_5xx, f"no 5xx among the losses: {outcome.summary()}"


async def test_high_nofile_loses_nothing(chaos_session_id: str) -> None:
    async with nofile_rig(f"{chaos_session_id}-high") as rig:
        outcome = await rig.measure(HIGH, N, request_timeout=30, deadline=45)
    print(outcome.summary())
    assert outcome.lost == 0, f"the fixed limit still lost requests: {outcome.summary()}"
    assert outcome.emfile_lines == 0, outcome.summary()
    assert outcome.worker_connections_lines == 0, outcome.summary()
