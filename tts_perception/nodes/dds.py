"""The Fast DDS transport profile for camera-sized messages (``config/fastdds.xml``).

Fast DDS reads the profile file named by an environment variable when a process creates its
first participant, and the name depends on its major version: Fast DDS 2.x (Humble, Jazzy)
reads ``FASTRTPS_DEFAULT_PROFILES_FILE``; Fast DDS 3 (Kilted and newer) reads
``FASTDDS_DEFAULT_PROFILES_FILE`` (and warns that the old name is deprecated when it is set).
The package sets the profile before ``rclpy.init`` under both names, or under the new one only
where the distribution is known to run Fast DDS 3: the launch files through
``SetEnvironmentVariable``, every entry point, the bring-up, the demo, the benches and the
tests through :func:`dds_env`. A profile the user chose under either name is kept and given
the other name too.
"""

import os
from typing import MutableMapping, Optional, Tuple

from tts_perception.common.paths import config_file

FASTDDS_VAR = 'FASTDDS_DEFAULT_PROFILES_FILE'      # Fast DDS 3: Kilted and newer
FASTRTPS_VAR = 'FASTRTPS_DEFAULT_PROFILES_FILE'    # Fast DDS 2.x: Humble, Jazzy
PROFILE_VARS = (FASTDDS_VAR, FASTRTPS_VAR)
DISTRIBUTIONS = ('humble', 'jazzy', 'kilted', 'rolling')
FAST_DDS_2 = ('humble', 'jazzy')


def ros_distribution() -> str:
    """The ROS 2 distribution this rclpy comes from: ``ROS_DISTRO`` where a system install
    sets it, else the ``ros-<distro>-rclpy`` wheel installed, else 'unknown'."""
    from importlib import metadata
    if os.environ.get('ROS_DISTRO'):
        return os.environ['ROS_DISTRO']
    for d in DISTRIBUTIONS:
        try:
            metadata.version(f'ros-{d}-rclpy')
            return d
        except metadata.PackageNotFoundError:
            continue
    return 'unknown'


def profile_vars(distribution: Optional[str] = None) -> Tuple[str, ...]:
    """The variable names to set on ``distribution`` (default: this one): both, except where
    it is known to run Fast DDS 3, which reads the new name and warns about the old one."""
    d = distribution or ros_distribution()
    return PROFILE_VARS if d in FAST_DDS_2 or d == 'unknown' else (FASTDDS_VAR,)


def profile_path() -> str:
    """Absolute path of the shipped profile."""
    return str(config_file('fastdds.xml'))


def chosen_profile(env: MutableMapping[str, str]) -> Optional[str]:
    """The profile file the user set under either name (the Fast DDS 3 name first), or None."""
    return next((env[v] for v in PROFILE_VARS if env.get(v)), None)


def dds_env(env: MutableMapping[str, str],
            distribution: Optional[str] = None) -> MutableMapping[str, str]:
    """``env`` with a profile under the names :func:`profile_vars` gives: the user's own
    (either name), else the shipped one. Left alone when another RMW than Fast DDS is
    selected."""
    rmw = env.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if not rmw.startswith('rmw_fastrtps'):
        return env
    path = chosen_profile(env) or profile_path()
    for var in profile_vars(distribution):
        if not env.get(var):
            env[var] = path
    return env


def use_profile() -> Optional[str]:
    """Apply :func:`dds_env` to this process (call before ``rclpy.init``); the file in use."""
    dds_env(os.environ)
    return chosen_profile(os.environ)
