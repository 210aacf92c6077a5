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

    def _call(self, srv_type, name: str, req, timeout: float = 20.0):
        cli = self.node.create_client(srv_type, name)
        if not cli.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'service {name} not available')
        fut = cli.call_async(req)
        self.wait_for(fut.done, timeout)
        if not fut.done():
            raise TimeoutError(f'service {name} did not answer')
        return fut.result()

    def set_param(self, node: str, name: str, value):
        req = SetParameters.Request()
        req.parameters = [Parameter(name, value=value).to_parameter_msg()]
        return self._call(SetParameters, f'/{node}/set_parameters', req).results[0]

    def change_state(self, node: str, transition_id: int) -> bool:
        req = ChangeState.Request()
        req.transition = Transition(id=transition_id)
        return self._call(ChangeState, f'/{node}/change_state', req, timeout=60.0).success

    def get_state(self, node: str) -> str:
        return self._call(GetState, f'/{node}/get_state', GetState.Request()).current_state.label
