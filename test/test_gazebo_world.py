"""The shipped Gazebo world and gazebo.launch.py's bridge match the nodes (Gazebo itself
cannot run here: these checks are what can be checked without it)."""

import ast
import math
import re
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT

pytestmark = pytest.mark.build
WORLD = ROOT / 'worlds' / 'camera_robot.sdf'
LAUNCH = ROOT / 'launch' / 'gazebo.launch.py'


def _launch_defaults():
    tree = ast.parse(LAUNCH.read_text())
    out = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'DeclareLaunchArgument':
            dv = next((k.value for k in n.keywords if k.arg == 'default_value'), None)
            if isinstance(dv, ast.Constant):
                out[n.args[0].value] = dv.value
    return out


def test_shipped_world_is_the_generated_one():
    from tts_perception.sim.course import make_course
    from tts_perception.sim.gazebo_world import course_sdf
    assert WORLD.read_text() == course_sdf(make_course(0, 60.0)), \
        'worlds/camera_robot.sdf is stale: python -m tts_perception.sim.gazebo_world'


def test_world_is_well_formed_sdf_with_the_systems_it_needs():
    root = ET.parse(WORLD).getroot()
    assert root.tag == 'sdf' and root.attrib['version'] == '1.9'
    world = root.find('world')
    plugins = {p.attrib['filename'] for p in world.iter('plugin')}
    assert {'gz-sim-physics-system', 'gz-sim-sensors-system', 'gz-sim-diff-drive-system',
            'gz-sim-scene-broadcaster-system'} <= plugins
    names = [m.attrib['name'] for m in world.findall('model')]
    assert len(names) == len(set(names)) and 'camera_robot' in names
    from tts_perception.sim.course import make_course
    assert sum(n.split('_')[0] in ('box', 'cylinder', 'pole', 'person')
               for n in names) == len(make_course(0, 60.0).obstacles)


def test_camera_and_drive_match_the_nodes_and_the_bridge():
    from tts_perception.control.control_law import ControlParams
    from tts_perception.nodes.sim_node import PARAMS as SIM
    sim = {p.name: p.default for p in SIM}
    c = ControlParams()
    robot = [m for m in ET.parse(WORLD).getroot().find('world').findall('model')
             if m.attrib['name'] == 'camera_robot'][0]
    cam = robot.find('.//sensor[@type="camera"]')
    defaults = _launch_defaults()
    assert '/' + cam.find('topic').text == defaults['gz_camera_topic']
    img = cam.find('camera/image')
    assert (int(img.find('width').text), int(img.find('height').text)) == \
        (sim['width'], sim['height'])
    assert float(cam.find('update_rate').text) == sim['camera_rate']
    robot_z = float(robot.find('pose').text.split()[2])
    x, y, z, roll, pitch, yaw = (float(v) for v in cam.find('pose').text.split())
    assert robot_z + z == pytest.approx(c.camera_height, abs=1e-3)
    assert pitch == pytest.approx(math.radians(c.camera_pitch_deg), abs=1e-5)
    hfov = float(cam.find('camera/horizontal_fov').text)
    vfov = 2 * math.atan(math.tan(hfov / 2) * sim['height'] / sim['width'])
    assert math.degrees(vfov) == pytest.approx(c.camera_fovy_deg, abs=0.01)
    drive = robot.find('plugin[@filename="gz-sim-diff-drive-system"]')
    assert '/' + drive.find('topic').text == defaults['gz_cmd_vel_topic']


def test_bridge_types_match_what_the_nodes_use():
    text = LAUNCH.read_text()
    # camera: gz Image -> sensor_msgs/Image, remapped onto perception's default camera topic
    assert "'@sensor_msgs/msg/Image[gz.msgs.Image'" in text
    assert "'/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock'" in text
    assert "'@geometry_msgs/msg/Twist]gz.msgs.Twist'" in text
    remaps = dict(re.findall(r"\(LaunchConfiguration\('(\w+)'\), '([\w/]+)'\)", text))
    from tts_perception.nodes.perception_node import PARAMS
    camera_default = {p.name: p.default for p in PARAMS}['camera_topics'][0]
    assert remaps['gz_camera_topic'] == camera_default
    assert remaps['gz_cmd_vel_topic'] == 'cmd_vel'
    src = (ROOT / 'tts_perception' / 'nodes' / 'controller_node.py').read_text()
    assert "create_publisher(Twist, 'cmd_vel'" in src
    assert "sensor_msgs.msg import CompressedImage, Image" in \
        (ROOT / 'tts_perception' / 'nodes' / 'camera_qos.py').read_text()
