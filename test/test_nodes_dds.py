"""perception_node and controller_node in separate processes over real DDS."""

import json

import pytest

from conftest import ROOT

pytestmark = pytest.mark.dds

PROBE = str(ROOT / 'test' / 'ros_probe.py')
SIM = ['-m', 'tts_perception.nodes.sim_node', '--ros-args', '-p', 'width:=320', '-p',
       'height:=240', '-p', 'camera_rate:=10.0', '-p', 'drive_scripted:=true']
PER = ['-m', 'tts_perception.nodes.perception_node', '--autostart', '--ros-args',
       '--params-file', str(ROOT / 'config' / 'perception.yaml'), '-p', 'use_sim_time:=true']
CTL = ['-m', 'tts_perception.nodes.controller_node', '--ros-args', '--params-file',
       str(ROOT / 'config' / 'controller.yaml'), '-r', 'cmd_vel_in:=cmd_vel_nominal',
       '-r', 'segmentation:=camera/segmentation', '-p', 'watchdog_timeout:=1.0',
       '-p', 'max_decel:=4.0', '-p', 'use_sim_time:=true']
WATCHDOG = 1.0


def _json_lines(text):
    return [json.loads(x) for x in text.splitlines() if x.startswith('{')]


def test_segmentation_and_status_match_camera_stamps(procs):
    procs.python(*SIM)
    procs.python(*PER)
    probe = procs.python(PROBE, 'camera/image_raw:sensor_msgs/msg/Image',
                         'camera/segmentation:sensor_msgs/msg/Image',
                         'perception/status:diagnostic_msgs/msg/DiagnosticStatus',
                         '--count', '3', '--timeout', '60')
    out, _ = probe.communicate(timeout=120)
    assert probe.returncode == 0, out
    msgs = _json_lines(out)
    cams = {m['stamp_ns'] for m in msgs if m.get('topic') == 'camera/image_raw'}
    segs = [m for m in msgs if m.get('topic') == 'camera/segmentation']
    stats = [m for m in msgs if m.get('topic') == 'perception/status']
    assert segs and stats
    assert all(s['encoding'] == 'mono8' and s['width'] == 320 and s['height'] == 240
               for s in segs)
    # every segmentation/status answers a camera frame, by stamp
    assert {s['stamp_ns'] for s in segs} & cams
    assert all(int(s['values']['stamp_ns']) % 100_000_000 == 0 for s in stats)
    v = stats[-1]['values']
    for key in ('point', 'width', 'depth', 'precision', 'complexity', 'predicted_ms',
                'measured_ms', 'deadline_ms', 'missed', 'predicted_accuracy'):
        assert key in v
    # labels are real classes: floor (1) present in the bottom half of the frame
    assert sum(segs[-1]['hist'][:3]) > 0


def test_killing_perception_stops_the_robot_as_specified(procs, ros_env):
    """Fail-safe timing as a specification, measured on the controller's own clock: it starts
    decelerating within watchdog_timeout + one control period (one more period allowed for a
    late timer) of the last fresh perception and reaches zero at max_decel."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Twist
    from ros_client import RosClient
    client = RosClient(int(ros_env['ROS_DOMAIN_ID']))
    try:
        procs.python(*SIM)
        per = procs.python(*PER)
        procs.python(*CTL, '-p', 'diagnostics_period:=0.1')
        cmds = client.listen('cmd_vel', Twist)
        diags = client.listen('/diagnostics', DiagnosticArray)

        def ctl():
            st = [s for d in diags for s in d.status if s.name == 'controller_node']
            return {k.key: float(k.value) for k in st[-1].values
                    if k.key != 'reason'} if st else {}
        moving = []
        assert client.wait_for(lambda: (moving.append(bool(cmds) and cmds[-1].linear.x > 0.2)
                                        or moving[-10:] == [True] * 10), 120), \
            'controller never commanded motion'
        per.kill()
        assert client.wait_for(lambda: ctl().get('last_stop_zero_after_s', -1) >= 0, 30), ctl()
        c = ctl()
        period, decel = 0.05, 4.0
        # (diagnostics carry 4 significant digits: 1.0004 s reads as 1)
        assert WATCHDOG <= c['last_stop_decel_after_s'] <= WATCHDOG + 2 * period, c
        # from at most max_speed (2 m/s) to zero at max_decel, plus the step that reaches it
        assert c['last_stop_zero_after_s'] <= c['last_stop_decel_after_s'] + 2.0 / decel + \
            period, c
        assert c['fail_safe_stops'] == 1 and cmds[-1].linear.x == 0.0
        assert per.wait(timeout=5) == -9
    finally:
        client.close()


def test_controller_pushes_its_speed_limit_through_set_parameters(procs, ros_env):
    from ros_client import RosClient
    client = RosClient(int(ros_env['ROS_DOMAIN_ID']), name='nav_controller')
    try:
        client.node.declare_parameter('FollowPath.max_vel_x', 99.0)
        procs.python(*CTL, '-p', 'push_speed_limit_to:=/nav_controller', '-p',
                     'push_period:=0.2')
        # no perception at all: the pushed limit is the fail-safe 0 m/s
        assert client.wait_for(
            lambda: client.node.get_parameter('FollowPath.max_vel_x').value == 0.0, 30)
    finally:
        client.close()
