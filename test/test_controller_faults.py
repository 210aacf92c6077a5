"""The controller driven from outside as a robot's other processes drive it (its own process,
real DDS): a planner on cmd_vel_in, decision records on perception/status and free-floor
segmentations at 20 Hz, then one fault on one input at a time. Times are counted in the
controller's own control periods (one cmd_vel per period, on its steady timer), never on the
test's clock."""

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from vision_msgs.msg import Detection2D, Detection2DArray

from conftest import ROOT
from tts_perception.common.image_codec import fill_image_msg

pytestmark = pytest.mark.dds
PERIOD, DECEL, CMD_TIMEOUT = 0.05, 2.0, 0.5
CTL = ['-m', 'tts_perception.nodes.controller_node', '--ros-args', '--params-file',
       str(ROOT / 'config' / 'controller.yaml'), '-p', 'diagnostics_period:=0.1',
       '-p', f'max_decel:={DECEL}', '-p', f'cmd_timeout:={CMD_TIMEOUT}']
CAMERA = '/camera/image_raw'


class Robot:
    """The controller's surroundings: a planner, perception and a listener on cmd_vel."""

    def __init__(self, client, boxes=None):
        """``boxes``: perceive with a detector's boxes ([N, 4] in a 64x48 image, every tick,
        with camera_info) instead of a free-floor segmentation."""
        self.client, self.boxes = client, boxes
        self.views = True                   # segmentations or detections beside the records
        self.info_hw = (48, 64)             # the camera_info's image size
        node = client.node
        self.cmds = client.listen('cmd_vel', Twist)
        self.diags = client.listen('/diagnostics', DiagnosticArray)
        self.pub_cmd = node.create_publisher(Twist, 'cmd_vel_in', 10)
        self.pub_st = node.create_publisher(DiagnosticStatus, 'perception/status', 10)
        self.pub_seg = node.create_publisher(Image, 'segmentation', 10)
        self.seg = fill_image_msg(Image(), np.ones((48, 64), np.uint8), 'mono8')   # free floor
        self.pub_det = node.create_publisher(Detection2DArray, 'detections', 10)
        self.pub_info = node.create_publisher(CameraInfo, 'camera_info', 10)

    def record(self, camera=CAMERA, age_s=0.0, **fields):
        """A decision record of a frame captured ``age_s`` ago on the test's ROS clock."""
        stamp = self.client.node.get_clock().now().nanoseconds - int(age_s * 1e9)
        values = {'stamp_ns': stamp, 'age_ms': 10.0, 'total_ms': 8.0, 'width': 640,
                  'predicted_accuracy': 0.9, **fields}
        return DiagnosticStatus(name='perception', hardware_id=camera, values=[
            KeyValue(key=k, value=str(v)) for k, v in values.items()])

    def tick(self, planner=1.0, records=True, **record):
        """One 50 ms period of the surroundings."""
        if planner is not None:
            cmd = Twist()
            cmd.linear.x = planner
            self.pub_cmd.publish(cmd)
        if records:
            self.pub_st.publish(self.record(**record))
            if not self.views:
                pass
            elif self.boxes is None:
                self.pub_seg.publish(self.seg)
            else:
                self.pub_info.publish(CameraInfo(height=self.info_hw[0], width=self.info_hw[1]))
                self.pub_det.publish(self._detections())
        self.client.spin(0.05)

    def _detections(self) -> Detection2DArray:
        msg = Detection2DArray()
        for x1, y1, x2, y2 in self.boxes:
            d = Detection2D()
            d.bbox.center.position.x, d.bbox.center.position.y = (x1 + x2) / 2, (y1 + y2) / 2
            d.bbox.size_x, d.bbox.size_y = x2 - x1, y2 - y1
            msg.detections.append(d)
        return msg

    def drive_until(self, cond, timeout_ticks=1200, **kw) -> bool:
        for _ in range(timeout_ticks):
            if cond():
                return True
            self.tick(**kw)
        return cond()

    def cruising(self) -> bool:
        return len(self.cmds) > 5 and all(c.linear.x > 0.5 for c in self.cmds[-5:])

    def state(self):
        st = [s for d in self.diags for s in d.status if s.name == 'controller_node']
        if not st:
            return None, '', {}
        return st[-1].level, st[-1].message, {k.key: k.value for k in st[-1].values}


@pytest.fixture
def robot(procs, client):
    procs.python(*CTL)
    r = Robot(client)
    assert r.drive_until(r.cruising), 'the controller never drove'
    return r


def _finite_and_capped(cmds, max_speed=2.0, max_yaw=1.5):
    return all(math.isfinite(c.linear.x) and math.isfinite(c.angular.z) and
               -0.1 <= c.linear.x <= max_speed and abs(c.angular.z) <= max_yaw for c in cmds)


def test_a_silent_planner_stops_the_robot_within_the_timeout_and_braking(robot):
    v0 = robot.cmds[-1].linear.x
    n0 = len(robot.cmds)                  # the planner's last command is in flight now
    assert robot.drive_until(lambda: robot.cmds[-1].linear.x == 0.0, 200, planner=None)
    moving = sum(1 for c in robot.cmds[n0:] if c.linear.x > 0.0)
    # at most the timeout plus the braking time, in the controller's own periods (+2: the
    # command in flight, and the step that reaches zero)
    assert moving <= (CMD_TIMEOUT + v0 / DECEL) / PERIOD + 2, (moving, v0)
    assert robot.drive_until(lambda: 'cmd_vel_in silent' in robot.state()[1], 40, planner=None)
    level, msg, vals = robot.state()
    assert level == DiagnosticStatus.WARN and vals['command_fresh'] == '0', msg
    assert robot.drive_until(robot.cruising), 'did not resume when the planner came back'


@pytest.mark.parametrize('fault,counter', [
    ({'predicted_accuracy': 'nan'}, 'refused_records_malformed'),
    ({'total_ms': '1e200'}, 'refused_records_malformed'),
    ({'age_s': 2.0}, 'refused_records_stale'),          # a backlog delivered after a stall
    ({'age_s': -5.0}, 'refused_records_future'),
])
def test_poisoned_or_old_records_never_drive_the_robot(robot, fault, counter):
    n0 = len(robot.cmds)
    assert robot.drive_until(lambda: robot.cmds[-1].linear.x == 0.0, 200, **fault)
    assert _finite_and_capped(robot.cmds[n0:])
    assert robot.drive_until(lambda: int(robot.state()[2].get(counter, 0)) > 0, 40, **fault)
    level, msg, _ = robot.state()
    assert level == DiagnosticStatus.ERROR and 'watchdog' in msg and 'last refused' in msg, msg


def test_records_of_two_cameras_stop_a_controller_that_follows_any(robot):
    for i in range(200):
        robot.tick(camera=CAMERA if i % 2 else '/rear/image_raw')
        if robot.cmds[-1].linear.x == 0.0:
            break
    assert robot.cmds[-1].linear.x == 0.0
    assert robot.drive_until(lambda: 'camera parameter' in robot.state()[1], 40,
                             camera='/rear/image_raw')


def test_lowered_caps_apply_at_once_and_bad_changes_are_refused(robot, client):
    def accepted(param, value):
        return client.set_param('controller_node', param, value).successful
    assert accepted('max_speed', 0.3)
    n = len(robot.cmds)
    robot.tick()
    robot.tick()
    assert robot.cmds[n + 1:] and all(c.linear.x <= 0.3 for c in robot.cmds[n + 1:])
    assert not accepted('control_period', 0.8)     # watchdog_timeout 0.5 < 0.8
    assert not accepted('cmd_timeout', 0.01)       # < control_period
    assert accepted('latency_window', 3)


def test_a_huge_or_wrong_segmentation_is_dropped_and_counted(procs, client):
    procs.python(*CTL, '-p', 'max_image_pixels:=5000')
    r = Robot(client)
    r.seg = fill_image_msg(Image(), np.ones((100, 100), np.uint8), 'mono8')
    assert r.drive_until(lambda: int(r.state()[2].get('refused_segmentations', 0)) > 3, 400)
    assert all(c.linear.x == 0.0 for c in r.cmds)   # no free distance seen: never drives


def test_an_exception_in_a_callback_still_sends_the_zero(procs, client):
    """A bug in a callback ends the process; the zero still reaches the base."""
    proc = procs.python(str(ROOT / 'test' / 'fault_nodes.py'), 'controller-raises',
                        *CTL[2:])
    r = Robot(client)
    assert r.drive_until(r.cruising), 'the controller never drove'
    r.tick(planner=42.0)                           # the injected bug fires on this command
    out, _ = proc.communicate(timeout=30)
    client.spin(0.5)
    assert proc.returncode != 0 and 'injected fault' in out, out
    assert r.cmds[-1].linear.x == 0.0 and r.cmds[-1].angular.z == 0.0, r.cmds[-3:]


def test_a_detectors_boxes_drive_the_robot_and_bad_boxes_never_do(procs, client):
    """Following detections: no box, it drives; a box standing at the robot's feet (its
    bottom edge on the image's last row) stops it; boxes with a value that is not finite
    are refused, counted, and leave it stopped."""
    procs.python(*CTL)
    r = Robot(client, boxes=[])
    assert r.drive_until(r.cruising), 'no box ahead, and the controller never drove'
    r.boxes = [(24.0, 20.0, 40.0, 47.0)]
    assert r.drive_until(lambda: r.cmds[-1].linear.x == 0.0, 200)
    r.boxes = [(24.0, 20.0, float('nan'), 47.0)]
    assert r.drive_until(lambda: int(r.state()[2].get('refused_detections', 0)) > 3, 200)
    n = len(r.cmds)
    r.drive_until(lambda: len(r.cmds) > n + 20, 200)
    assert all(c.linear.x == 0.0 for c in r.cmds[n:]) and _finite_and_capped(r.cmds)


@pytest.mark.parametrize('boxes', [None, []], ids=['segmentation', 'detections'])
def test_records_without_the_view_beside_them_stop_the_robot(procs, client, boxes):
    """The segmentation or detections fall silent while records keep coming (their
    publisher died, a QoS mismatch): the robot stops within the watchdog and braking, says
    why, and drives again when they return."""
    procs.python(*CTL)
    r = Robot(client, boxes=boxes)
    assert r.drive_until(r.cruising), 'the controller never drove'
    r.views = False
    n0 = len(r.cmds)
    assert r.drive_until(lambda: r.cmds[-1].linear.x == 0.0, 200)
    moving = sum(1 for c in r.cmds[n0:] if c.linear.x > 0.0)
    top = max(c.linear.x for c in r.cmds[n0:])       # it may speed up until the watchdog
    # the watchdog (0.5 s) and the braking from the top speed, in the controller's periods
    # (+3: the command in flight, the view's last period, and the step that reaches zero)
    assert moving <= (0.5 + top / DECEL) / PERIOD + 3, (moving, top)
    assert r.drive_until(lambda: 'no segmentation or detections' in r.state()[1], 40)
    r.views = True
    assert r.drive_until(r.cruising), 'did not resume when the view came back'


@pytest.mark.parametrize('hw', [(0, 64), (48, 0), (200_000, 64)])
def test_a_camera_info_of_no_size_or_absurd_size_never_lets_boxes_drive(procs, client, hw):
    """Box pixels have geometry only through a camera_info of a real image size: with
    only a bad one the boxes are refused, both counted, and the robot never moves."""
    procs.python(*CTL)
    r = Robot(client, boxes=[])
    r.info_hw = hw
    assert r.drive_until(lambda: int(r.state()[2].get('refused_camera_info', 0)) > 3 and
                         int(r.state()[2].get('refused_detections', 0)) > 3, 400)
    assert r.cmds and all(c.linear.x == 0.0 for c in r.cmds) and _finite_and_capped(r.cmds)
