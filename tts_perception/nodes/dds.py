"""The Fast DDS transport profile for camera-sized messages (``config/fastdds.xml``).

Fast DDS reads the profile file named by an environment variable when a process creates its
first participant, and the name depends on its major version: Fast DDS 3 (Kilted and newer)
reads ``FASTDDS_DEFAULT_PROFILES_FILE``, Fast DDS 2.x (Jazzy, Humble) reads
``FASTRTPS_DEFAULT_PROFILES_FILE``. The package therefore sets both, before ``rclpy.init``: the
launch files through ``SetEnvironmentVariable``, every entry point, the bring-up, the demo, the
benches and the tests through :func:`dds_env`. A profile the user chose under either name is
kept and given the other name too.
"""

import os
from typing import MutableMapping, Optional

from tts_perception.common.paths import config_file

#: (Fast DDS 3 name, Fast DDS 2.x name)
PROFILE_VARS = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def profile_path() -> str:
    """Absolute path of the shipped profile."""
    return str(config_file('fastdds.xml'))


def chosen_profile(env: MutableMapping[str, str]) -> Optional[str]:
    """The profile file the user set under either name (the Fast DDS 3 name first), or None."""
    return next((env[v] for v in PROFILE_VARS if env.get(v)), None)


def dds_env(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``env`` with a profile under both variable names: the user's own (either name), else
    the shipped one. Left alone when another RMW than Fast DDS is selected."""
    rmw = env.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if not rmw.startswith('rmw_fastrtps'):
        return env
    path = chosen_profile(env) or profile_path()
    for var in PROFILE_VARS:
        if not env.get(var):
            env[var] = path
    return env


def use_profile() -> Optional[str]:
    """Apply :func:`dds_env` to this process (call before ``rclpy.init``); the file in use."""
    dds_env(os.environ)
    return chosen_profile(os.environ)
