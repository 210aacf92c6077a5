"""Every node stops cleanly on SIGINT (once or twice, as a terminal plus ``ros2 launch`` send
it) and on SIGTERM: exit code 0, no traceback or stray exception text, and the controller's
last command is zero even when it was driving when the signal came."""

import signal
import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from conftest import ROOT
from tts_perception.common.image_codec import fill_image_msg

pytestmark = pytest.mark.dds
SIGNALS = {'SIGINT': [signal.SIGINT], 'SIGINTx2': [signal.SIGINT, signal.SIGINT],
           'SIGTERM': [signal.SIGTERM]}
BAD_TEXT = ('Traceback', 'never retrieved', 'Segmentation fault', 'RCLError',
            'context is invalid', 'core dumped')
NODES = {
    'sim_node': ['-m', 'tts_perception.nodes.sim_node', '--ros-args', '-p', 'width:=160',
                 '-p', 'height:=120', '-p', 'camera_rate:=30.0', '-p', 'drive_scripted:=true'],
    'perception_node': ['-m', 'tts_perception.nodes.perception_node', '--autostart',
                        '--ros-args', '--params-file',
                        str(ROOT / 'config' / 'perception.yaml')],
    'controller_node': ['-m', 'tts_perception.nodes.controller_node', '--ros-args',
                        '--params-file', str(ROOT / 'config' / 'controller.yaml')],
}


def _send(proc, sigs):
    for s in sigs:
        proc.send_signal(s)
        time.sleep(0.05)


def _finish(proc, timeout=20.0):
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _status(stamp_ns, total_ms=20.0):
    st = DiagnosticStatus(name='perception', hardware_id='/camera/image_raw')
    st.values = [KeyValue(key=k, value=v) for k, v in
                 (('stamp_ns', str(stamp_ns)), ('age_ms', '5.0'), ('total_ms', str(total_ms)),
                  ('width', '640'), ('predicted_accuracy', '0.9'))]
    return st


@pytest.mark.parametrize('how', sorted(SIGNALS))
@pytest.mark.parametrize('name', ['sim_node', 'perception_node'])
def test_node_exits_cleanly_on_signals(procs, client, name, how):
    proc = procs.python(*NODES[name])
    topic = 'camera/image_raw'
    if name == 'sim_node':       # up once it publishes frames
        got = client.listen(topic, Image, qos=qos_profile_sensor_data)
        assert client.wait_for(lambda: len(got) >= 3, 60)
    else:                        # up once it subscribes to the camera
        assert client.wait_for(lambda: client.node.count_subscribers(topic) > 0, 90)
    _send(proc, SIGNALS[how])
    code, out = _finish(proc)
    assert code == 0, out
    assert not [b for b in BAD_TEXT if b in out], out


@pytest.mark.parametrize('how', sorted(SIGNALS))
def test_controller_sends_zero_before_it_exits(procs, client, how):
    proc = procs.python(*NODES['controller_node'])
    cmds = client.listen('cmd_vel', Twist)
    pub_in = client.node.create_publisher(Twist, 'cmd_vel_in', 10)
    pub_st = client.node.create_publisher(DiagnosticStatus, 'perception/status', 10)
    pub_seg = client.node.create_publisher(Image, 'segmentation', 10)
    floor = np.ones((48, 64), np.uint8)           # free floor everywhere: nothing in the way
    seg = fill_image_msg(Image(), floor, 'mono8')
    fwd = Twist()
    fwd.linear.x = 1.0

    def feed():
        pub_in.publish(fwd)
        pub_st.publish(_status(client.node.get_clock().now().nanoseconds))
        pub_seg.publish(seg)
        client.spin(0.05)
        return bool(cmds) and cmds[-1].linear.x > 0.3
    end = time.monotonic() + 60
    while time.monotonic() < end and not feed():
        pass
    assert cmds and cmds[-1].linear.x > 0.3, 'controller never drove'
    _send(proc, SIGNALS[how])              # while perception is fresh and the robot moving
    code, out = _finish(proc)
    client.spin(0.5)                       # the last command still in flight
    assert code == 0, out
    assert not [b for b in BAD_TEXT if b in out], out
    assert cmds[-1].linear.x == 0.0 and cmds[-1].angular.z == 0.0
