"""Nodes with one injected fault, for the tests of what happens around it (the exit path, the
diagnostics, the recovery); the node code under test is the real one.

    fault_nodes.py controller-raises ROS_ARGS...   a callback raises on cmd_vel_in.x == 42
    fault_nodes.py worker-dies ROS_ARGS...         the inference worker dies on its 5th batch
    fault_nodes.py worker-hangs ROS_ARGS...        the inference worker hangs on its 5th batch
"""

import sys
import threading


def controller_raises(argv) -> int:
    from tts_perception.nodes.controller_node import ControllerNode, run_node, stop_robot

    class Faulty(ControllerNode):
        def _on_cmd(self, msg):
            if msg.linear.x == 42.0:
                raise RuntimeError('injected fault')
            super()._on_cmd(msg)
    return run_node(Faulty, argv, on_exit=stop_robot)


def perception_worker(argv, hang: bool) -> int:
    from tts_perception.nodes.perception_node import main, PerceptionNode
    release = threading.Event()
    configure = PerceptionNode.on_configure

    def on_configure(self, state):
        result = configure(self, state)
        batches = [0]
        process = self.pipeline._process_batch

        def faulty(reqs):
            batches[0] += 1
            if batches[0] == 5:
                if hang:
                    release.wait(120)
                else:
                    raise SystemExit('injected fault: the worker dies')
            return process(reqs)
        self.pipeline._process_batch = faulty
        return result
    PerceptionNode.on_configure = on_configure
    try:
        return main(argv)
    finally:
        release.set()


if __name__ == '__main__':
    mode, rest = sys.argv[1], [sys.argv[0]] + sys.argv[2:]
    if mode == 'controller-raises':
        sys.exit(controller_raises(rest))
    sys.exit(perception_worker(rest, hang=mode == 'worker-hangs'))
