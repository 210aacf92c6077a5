"""The Fast DDS transport profile for camera-sized messages (``config/fastdds.xml``).

Fast DDS reads the profile named by ``FASTDDS_DEFAULT_PROFILES_FILE`` when a process creates
its first participant, so it is set before ``rclpy.init``: by the launch files
(``SetEnvironmentVariable``), and by every entry point of this package through
:func:`use_profile` when the user has not chosen a profile of their own.
"""

import os
from typing import MutableMapping, Optional

from tts_perception.common.paths import config_file

PROFILE_VARS = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def profile_path() -> str:
    """Absolute path of the shipped profile."""
    return str(config_file('fastdds.xml'))


def dds_env(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``env`` with the shipped profile set, unless it names a profile or another RMW."""
    rmw = env.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if rmw.startswith('rmw_fastrtps') and not any(env.get(v) for v in PROFILE_VARS):
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = profile_path()
    return env


def use_profile() -> Optional[str]:
    """Apply :func:`dds_env` to this process (call before ``rclpy.init``); the file in use."""
    dds_env(os.environ)
    return os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or \
        os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE')
