"""In-test ROS client (its own rclpy Context on the test's domain): publishes frames, drives
parameters and lifecycle of nodes that run in other processes, and collects their outputs."""

import time
from typing import Dict, List

from diagnostic_msgs.msg import DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import Image

from tts_perception.common.image_codec import fill_image_msg


# the state a lifecycle transition ends in when it succeeds
_GOALS = {Transition.TRANSITION_CONFIGURE: 'inactive',
          Transition.TRANSITION_ACTIVATE: 'active',
          Transition.TRANSITION_DEACTIVATE: 'inactive',
          Transition.TRANSITION_CLEANUP: 'unconfigured',
          Transition.TRANSITION_UNCONFIGURED_SHUTDOWN: 'finalized',
          Transition.TRANSITION_INACTIVE_SHUTDOWN: 'finalized',
          Transition.TRANSITION_ACTIVE_SHUTDOWN: 'finalized'}


class RosClient:
    """A node in the test process; call :meth:`close` at the end."""

    def __init__(self, domain_id: int, name: str = 'test_client'):
        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=domain_id)
        self.node = Node(name, context=self.ctx)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self.pubs: Dict[str, object] = {}
        self.got: Dict[str, List] = {}
        self.clients: Dict[str, object] = {}

    def close(self) -> None:
        self.ex.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ex.spin_once(timeout_sec=0.01)

    def listen(self, topic: str, mtype, qos=10) -> List:
        self.got[topic] = []
        self.node.create_subscription(mtype, topic, self.got[topic].append, qos)
        return self.got[topic]

    def listen_status(self) -> List[Dict[str, str]]:
        out: List[Dict[str, str]] = []
        self.node.create_subscription(
            DiagnosticStatus, 'perception/status',
            lambda m: out.append({'camera': m.hardware_id,
                                  **{k.key: k.value for k in m.values}}), 50)
        return out

    def publish_frame(self, topic: str, rgb: np.ndarray) -> int:
        pub = self.pubs.get(topic)
        if pub is None:
            pub = self.pubs[topic] = self.node.create_publisher(Image, topic, 10)
        msg = Image()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = 'camera'
        fill_image_msg(msg, rgb, 'rgb8')
        pub.publish(msg)
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def wait_for(self, cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            self.ex.spin_once(timeout_sec=0.02)
        return cond()

    def _client(self, srv_type, name: str):
        cli = self.clients.get(name)
        if cli is None:
            cli = self.clients[name] = self.node.create_client(srv_type, name)
        return cli

    def _send(self, srv_type, name: str, req, timeout: float, resend_s: float):
        """Send ``req`` and again every ``resend_s`` until one of the copies is answered;
        returns the response, or None after ``timeout``.

        ``wait_for_service`` is true once this client sees the server, which can be before the
        server has matched this client's response reader (on a busy machine, a process that
        just started): that request or its response is lost, and DDS does not resend it."""
        cli = self._client(srv_type, name)
        end = time.monotonic() + timeout
        if not cli.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'service {name} not available')
        futs = []
        while time.monotonic() < end:
            futs.append(cli.call_async(req))
            self.wait_for(lambda: any(f.done() for f in futs),
                          min(resend_s, max(0.0, end - time.monotonic())))
            for f in futs:
                if f.done():
                    return f.result()
        return None

    def _call(self, srv_type, name: str, req, timeout: float = 20.0):
        """A call whose repetition does no harm (get state, set a parameter to a value)."""
        res = self._send(srv_type, name, req, timeout, resend_s=3.0)
        if res is None:
            raise TimeoutError(f'service {name} did not answer')
        return res

    def set_param(self, node: str, name: str, value):
        req = SetParameters.Request()
        req.parameters = [Parameter(name, value=value).to_parameter_msg()]
        return self._call(SetParameters, f'/{node}/set_parameters', req).results[0]

    def change_state(self, node: str, transition_id: int, timeout: float = 60.0) -> bool:
        """A lifecycle transition. Sent again (see :meth:`_send`) only while the node answers
        that it is still in the state it started from; the answer to the first copy decides,
        or the state the node ends in where no answer came."""
        start = self.get_state(node)
        cli = self._client(ChangeState, f'/{node}/change_state')
        req = ChangeState.Request()
        req.transition = Transition(id=transition_id)
        end = time.monotonic() + timeout
        futs = [cli.call_async(req)]
        while time.monotonic() < end:
            if self.wait_for(lambda: any(f.done() for f in futs), 5.0):
                if futs[0].done():
                    return futs[0].result().success
                if any(f.result().success for f in futs if f.done()):
                    return True
            probe = self._send(GetState, f'/{node}/get_state', GetState.Request(), 2.0, 1.0)
            if probe is not None and probe.current_state.label == start:
                futs.append(cli.call_async(req))
        return self.get_state(node) == _GOALS.get(transition_id)

    def get_state(self, node: str) -> str:
        return self._call(GetState, f'/{node}/get_state', GetState.Request()).current_state.label
