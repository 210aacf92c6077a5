"""The transport profile is set under the variable name each Fast DDS reads."""

import pytest

from tts_perception.nodes.dds import (dds_env, FASTDDS_VAR, FASTRTPS_VAR, profile_path,
                                      profile_vars, ros_distribution)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize('distro', ['humble', 'jazzy', 'unknown'])
def test_fast_dds_2_distributions_get_both_names(distro):
    env = dds_env({}, distro)
    assert env == {FASTDDS_VAR: profile_path(), FASTRTPS_VAR: profile_path()}


def test_fast_dds_3_gets_the_new_name_only():
    assert dds_env({}, 'kilted') == {FASTDDS_VAR: profile_path()}
    assert profile_vars('rolling') == (FASTDDS_VAR,)


@pytest.mark.parametrize('own', [FASTDDS_VAR, FASTRTPS_VAR])
def test_a_users_own_profile_under_either_name_is_kept_and_mirrored(own):
    env = dds_env({own: '/robot/dds.xml'}, 'jazzy')
    assert env[FASTDDS_VAR] == env[FASTRTPS_VAR] == '/robot/dds.xml'
    assert dds_env({own: '/robot/dds.xml'}, 'kilted')[FASTDDS_VAR] == '/robot/dds.xml'


def test_another_rmw_is_left_alone():
    env = {'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'}
    assert dds_env(dict(env), 'jazzy') == env


def test_this_environment_names_its_distribution():
    assert ros_distribution() in ('jazzy', 'kilted')
