"""The built-in course as a Gazebo (gz sim, SDF 1.9) world with a camera robot.

    python -m tts_perception.sim.gazebo_world --seed 0 --out worlds/camera_robot.sdf

Same seeded corridor, segments and obstacles as the MuJoCo world (``sim/course.py``); a
differential-drive robot whose camera has the geometry the controller's default parameters
describe (height, pitch, vertical field of view) and the image size and rate of
``config/sim.yaml``. Gazebo topics, bridged by ``launch/gazebo.launch.py``:

    /camera   gz.msgs.Image   -> sensor_msgs/msg/Image       camera/image_raw
    /cmd_vel  gz.msgs.Twist   <- geometry_msgs/msg/Twist      cmd_vel
    /clock    gz.msgs.Clock   -> rosgraph_msgs/msg/Clock      /clock

Lighting is one sun for the whole course (the MuJoCo world also dims its dark segments).
"""

import argparse
import math
from pathlib import Path
import sys
from typing import List, Optional, Sequence

from tts_perception.sim.course import Course, CORRIDOR_HALF_WIDTH, COURSE_LENGTH_M, make_course

CAMERA_TOPIC = '/camera'
CMD_VEL_TOPIC = '/cmd_vel'


def _f(*v: float) -> str:
    return ' '.join(f'{x:.4g}' for x in v)


def _static(name: str, pose: Sequence[float], geometry: str, rgba: Sequence[float]) -> str:
    return (f'<model name="{name}"><static>true</static><pose>{_f(*pose)}</pose>'
            f'<link name="link"><collision name="c"><geometry>{geometry}</geometry></collision>'
            f'<visual name="v"><geometry>{geometry}</geometry><material>'
            f'<ambient>{_f(*rgba)}</ambient><diffuse>{_f(*rgba)}</diffuse></material>'
            f'</visual></link></model>')


def _box(size: Sequence[float]) -> str:
    return f'<box><size>{_f(*size)}</size></box>'


def robot_sdf(width: int, height: int, rate: float, camera_height: float, pitch_deg: float,
              fovy_deg: float) -> str:
    """A differential-drive robot with a forward camera."""
    hfov = 2 * math.atan(math.tan(math.radians(fovy_deg) / 2) * width / height)
    wheel = ('<link name="{n}"><pose relative_to="chassis">0 {y} -0.05 -1.5708 0 0</pose>'
             '<inertial><mass>0.5</mass></inertial>'
             '<collision name="c"><geometry><cylinder><radius>0.1</radius><length>0.05'
             '</length></cylinder></geometry></collision>'
             '<visual name="v"><geometry><cylinder><radius>0.1</radius><length>0.05</length>'
             '</cylinder></geometry></visual></link>'
             '<joint name="{n}_joint" type="revolute"><parent>chassis</parent><child>{n}</child>'
             '<axis><xyz expressed_in="__model__">0 1 0</xyz></axis></joint>')
    return (
        '<model name="camera_robot"><pose>0 0 0.15 0 0 0</pose>'
        '<link name="chassis"><inertial><mass>10</mass></inertial>'
        f'<collision name="c"><geometry>{_box((0.5, 0.4, 0.15))}</geometry></collision>'
        f'<visual name="v"><geometry>{_box((0.5, 0.4, 0.15))}</geometry></visual>'
        f'<sensor name="front_camera" type="camera">'
        f'<pose>0.2 0 {camera_height - 0.15:.4g} 0 {math.radians(pitch_deg):.6f} 0</pose>'
        f'<topic>{CAMERA_TOPIC.lstrip("/")}</topic><update_rate>{rate:g}</update_rate>'
        f'<always_on>true</always_on><camera><horizontal_fov>{hfov:.6f}</horizontal_fov>'
        f'<image><width>{width}</width><height>{height}</height><format>R8G8B8</format></image>'
        '<clip><near>0.05</near><far>50</far></clip></camera></sensor></link>'
        '<link name="caster"><pose relative_to="chassis">0.2 0 -0.1 0 0 0</pose>'
        '<collision name="c"><geometry><sphere><radius>0.05</radius></sphere></geometry>'
        '<surface><friction><ode><mu>0</mu><mu2>0</mu2></ode></friction></surface>'
        '</collision></link>'
        '<joint name="caster_joint" type="fixed"><parent>chassis</parent><child>caster</child>'
        '</joint>'
        + wheel.format(n='left_wheel', y=0.25) + wheel.format(n='right_wheel', y=-0.25) +
        '<plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive">'
        '<left_joint>left_wheel_joint</left_joint><right_joint>right_wheel_joint</right_joint>'
        '<wheel_separation>0.5</wheel_separation><wheel_radius>0.1</wheel_radius>'
        f'<topic>{CMD_VEL_TOPIC.lstrip("/")}</topic><odom_topic>odom</odom_topic></plugin>'
        '</model>')


def course_sdf(course: Course, width: int = 640, height: int = 480, rate: float = 30.0,
               camera_height: float = 0.5, pitch_deg: float = 15.0,
               fovy_deg: float = 70.0) -> str:
    """The whole world as SDF text."""
    models: List[str] = []
    for i, seg in enumerate(course.segments):
        length = seg.x1 - seg.x0
        models.append(_static(f'floor_{i}', ((seg.x0 + seg.x1) / 2, 0, -0.01, 0, 0, 0),
                              _box((length, 2 * CORRIDOR_HALF_WIDTH, 0.02)),
                              (*seg.floor_rgb, 1.0)))
    for side in (-1, 1):
        models.append(_static(f'wall_{"left" if side > 0 else "right"}',
                              (course.length / 2, side * (CORRIDOR_HALF_WIDTH + 0.05), 0.5,
                               0, 0, 0), _box((course.length + 10, 0.1, 1.0)),
                              (0.6, 0.6, 0.6, 1.0)))
    for i, ob in enumerate(course.obstacles):
        if ob.kind == 'box':
            geo = _box(tuple(2 * s for s in ob.size))
            pose = (ob.x, ob.y, ob.size[2], 0, 0, ob.yaw)
        elif ob.kind in ('cylinder', 'pole'):
            geo = f'<cylinder><radius>{ob.size[0]:.4g}</radius><length>{2 * ob.size[1]:.4g}' \
                  f'</length></cylinder>'
            pose = (ob.x, ob.y, ob.size[1], 0, 0, 0)
        else:                                       # person: a standing capsule
            geo = f'<capsule><radius>{ob.size[0]:.4g}</radius><length>{2 * ob.size[1]:.4g}' \
                  f'</length></capsule>'
            pose = (ob.x, ob.y, ob.size[1] + ob.size[0], 0, 0, 0)
        models.append(_static(f'{ob.kind}_{i}', pose, geo, ob.rgba))
    return (
        '<?xml version="1.0"?>\n'
        f'<!-- generated by python -m tts_perception.sim.gazebo_world (seed {course.seed}, '
        f'length {course.length:g} m); do not edit -->\n'
        '<sdf version="1.9"><world name="tts_course">'
        '<physics name="1ms" type="ignored"><max_step_size>0.001</max_step_size>'
        '<real_time_factor>1.0</real_time_factor></physics>'
        '<plugin filename="gz-sim-physics-system" name="gz::sim::systems::Physics"/>'
        '<plugin filename="gz-sim-user-commands-system" name="gz::sim::systems::UserCommands"/>'
        '<plugin filename="gz-sim-scene-broadcaster-system" '
        'name="gz::sim::systems::SceneBroadcaster"/>'
        '<plugin filename="gz-sim-sensors-system" name="gz::sim::systems::Sensors">'
        '<render_engine>ogre2</render_engine></plugin>'
        '<light type="directional" name="sun"><cast_shadows>false</cast_shadows>'
        '<pose>0 0 10 0 0 0</pose><diffuse>0.9 0.9 0.9 1</diffuse>'
        '<direction>-0.3 0.2 -0.9</direction></light>\n'
        + '\n'.join(models) + '\n'
        + robot_sdf(width, height, rate, camera_height, pitch_deg, fovy_deg)
        + '\n</world></sdf>\n')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the world file."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--length', type=float, default=COURSE_LENGTH_M)
    ap.add_argument('--out', type=Path, default=Path('worlds/camera_robot.sdf'))
    a = ap.parse_args(argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(course_sdf(make_course(a.seed, a.length)))
    print(f'wrote {a.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
