"""Waiting for a booting kernel: the shell reply and the iopub ``idle`` status of one ``kernel_info``."""

from __future__ import annotations

import asyncio
from queue import Empty
from typing import Any

import pytest

from sluice.notebooks import runner


class BootingKernel:
    """A kernel client whose kernel publishes the ``idle`` of the first ``lost`` requests before our
    subscription is live (they never arrive), then behaves."""

    def __init__(self, lost: int, alive: bool = True, answers: bool = True) -> None:
        self.lost = lost
        self.alive = alive
        self.answers = answers
        self.requests: list[str] = []
        self.iopub_waits: list[float] = []
        self.shell: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.iopub: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def kernel_info(self) -> str:
        msg_id = f"m{len(self.requests)}"
        self.requests.append(msg_id)
        if self.answers:
            parent = {"msg_id": msg_id}
            self.shell.put_nowait({"parent_header": parent, "content": {"status": "ok"}})
            if len(self.requests) > self.lost:
                busy = {"parent_header": parent, "content": {"execution_state": "busy"}}
                self.iopub.put_nowait(busy)
                self.iopub.put_nowait({"parent_header": parent, "content": {"execution_state": "idle"}})
        return msg_id

    @staticmethod
    async def _get(queue: asyncio.Queue[dict[str, Any]], timeout: float) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(queue.get(), timeout)
        except TimeoutError:
            raise Empty from None

    async def get_shell_msg(self, timeout: float) -> dict[str, Any]:
        if timeout == 0:
            if self.shell.empty():
                raise Empty
            return self.shell.get_nowait()
        return await self._get(self.shell, timeout)

    async def get_iopub_msg(self, timeout: float) -> dict[str, Any]:
        self.iopub_waits.append(timeout)
        return await self._get(self.iopub, timeout)

    async def is_alive(self) -> bool:
        return self.alive


def test_a_subscribed_kernel_is_ready_after_one_request() -> None:
    kc = BootingKernel(lost=0)
    asyncio.run(runner._wait_for_ready(kc, 5.0))
    assert kc.requests == ["m0"]


def test_a_lost_idle_status_is_asked_for_again_after_the_short_iopub_wait() -> None:
    kc = BootingKernel(lost=2)
    asyncio.run(runner._wait_for_ready(kc, 5.0))
    # two requests whose idle never came, then the one that proves the subscription; the first lost one
    # cost only the short iopub wait, not the liveness check's full second; the wait doubles on each retry
    assert kc.requests == ["m0", "m1", "m2"]
    assert kc.iopub_waits[0] <= runner._IDLE_WAIT < runner._LIVENESS_CHECK
    assert kc.iopub_waits[1] <= 2 * runner._IDLE_WAIT
    assert kc.iopub_waits[1] > runner._IDLE_WAIT


def test_the_iopub_wait_grows_to_the_liveness_check_on_a_slow_machine() -> None:
    kc = BootingKernel(lost=6)
    asyncio.run(runner._wait_for_ready(kc, 30.0))
    assert len(kc.requests) == 7
    firsts = [w for w in kc.iopub_waits if w > 0]
    assert max(firsts) <= runner._LIVENESS_CHECK
    assert max(firsts) > runner._LIVENESS_CHECK / 2


def test_a_dead_kernel_is_reported() -> None:
    kc = BootingKernel(lost=0, alive=False, answers=False)
    with pytest.raises(RuntimeError, match="died"):
        asyncio.run(runner._wait_for_ready(kc, 5.0))


def test_a_kernel_that_never_answers_times_out() -> None:
    kc = BootingKernel(lost=0, answers=False)
    with pytest.raises(RuntimeError, match="no answer in 0 s"):
        asyncio.run(runner._wait_for_ready(kc, 0.2))
