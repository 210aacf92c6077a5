"""Bring-up (sim + perception + controller as processes): a start that fails part way leaves
nothing running behind it."""

import pytest

from tts_perception.nodes.bringup import Launcher, start_sim_stack

pytestmark = pytest.mark.dds


class FailingLauncher(Launcher):
    """A launcher whose start of one node fails as Popen does (no such file, no memory)."""

    def __init__(self, fail: str, **kw):
        super().__init__(**kw)
        self.fail = fail

    def start(self, name, cmd):
        if name == self.fail:
            raise OSError(12, 'Cannot allocate memory')
        return super().start(name, cmd)


def test_a_later_start_that_fails_stops_what_was_started(ros_env):
    la = FailingLauncher('controller_node', env=ros_env, quiet=True)
    with pytest.raises(RuntimeError, match='controller_node could not be started'):
        start_sim_stack(la, {}, timeout=120)
    perception = la.procs['perception_node']
    assert perception.poll() is not None, 'perception_node left running'
    assert 'sim_node' not in la.procs
