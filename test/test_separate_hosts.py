"""Perception and controller on two "hosts": network namespaces joined by a veth pair that the
test creates (private addresses inside them, no traffic leaves the machine). DDS over UDP
only, discovery through static peers (ROS_STATIC_PEERS; automatic discovery stays on
localhost). Frames, status and commands flow; cutting the link
triggers the controller's fail-safe within its specification."""

import json
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT

pytestmark = pytest.mark.dds
NS = ('tts_test_a', 'tts_test_b')
ADDR = ('10.231.7.1', '10.231.7.2')
WATCHDOG, PERIOD, DECEL = 0.5, 0.05, 1.5      # controller.yaml defaults


def _ip(*args, check=True):
    return subprocess.run(['ip', *args], capture_output=True, text=True, check=check)


def _namespaces_available() -> str:
    if shutil.which('ip') is None:
        return 'the ip tool (iproute2) is not installed'
    r = _ip('netns', 'add', 'tts_test_probe', check=False)
    if r.returncode != 0:
        return f'this machine forbids network namespaces: {r.stderr.strip()}'
    _ip('netns', 'del', 'tts_test_probe', check=False)
    return ''


@pytest.fixture
def two_hosts():
    why = _namespaces_available()
    if why:
        pytest.skip(why)
    for ns in NS:
        _ip('netns', 'del', ns, check=False)
        _ip('netns', 'add', ns)
    try:
        _ip('link', 'add', 'ttsveth_a', 'type', 'veth', 'peer', 'name', 'ttsveth_b')
        for ns, dev, addr in zip(NS, ('ttsveth_a', 'ttsveth_b'), ADDR):
            _ip('link', 'set', dev, 'netns', ns)
            _ip('-n', ns, 'addr', 'add', f'{addr}/24', 'dev', dev)
            _ip('-n', ns, 'link', 'set', dev, 'up')
            _ip('-n', ns, 'link', 'set', 'lo', 'up')
        yield
    finally:
        for ns in NS:
            _ip('netns', 'del', ns, check=False)


def test_perception_and_controller_on_two_hosts_and_a_cut_link(two_hosts, procs, ros_env,
                                                               sample_bag):
    env = dict(ros_env, FASTDDS_DEFAULT_PROFILES_FILE=str(ROOT / 'test' / 'fastdds_udp_only.xml'),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_STATIC_PEERS=';'.join(ADDR))
    env.pop('FASTRTPS_DEFAULT_PROFILES_FILE', None)

    def in_ns(i, *args):
        return procs.start(['ip', 'netns', 'exec', NS[i], sys.executable, *args], env=env)
    in_ns(0, '-m', 'tts_perception.nodes.perception_node', '--autostart', '--ros-args',
          '--params-file', str(ROOT / 'config' / 'perception.yaml'))
    in_ns(0, '-m', 'tts_perception.tools.frame_player', '--bag', str(sample_bag), '--size',
          '320x240', '--rate', '15', '--seconds', '60')
    in_ns(1, '-m', 'tts_perception.nodes.controller_node', '--ros-args', '--params-file',
          str(ROOT / 'config' / 'controller.yaml'), '-p', 'camera:=camera/image_raw',
          '-p', 'diagnostics_period:=0.1')
    peer = in_ns(1, str(ROOT / 'test' / 'netns_peer.py'), '90')
    cmds, diags, cut_at = [], [], None
    end = time.monotonic() + 85
    while time.monotonic() < end:
        line = peer.stdout.readline()
        if not line:
            break
        if not line.startswith('{'):
            continue
        m = json.loads(line)
        (cmds if 'v' in m else diags).append(m)
        moving = len(cmds) >= 20 and all(c['v'] > 0.2 for c in cmds[-20:])
        if cut_at is None and moving:
            _ip('-n', NS[0], 'link', 'set', 'ttsveth_a', 'down')     # cut the link
            cut_at = time.monotonic()
        if cut_at is not None and diags and \
                float(diags[-1]['controller'].get('last_stop_zero_after_s', -1)) >= 0:
            break
    assert cut_at is not None, 'perception on host A never drove the controller on host B'
    c = {k: float(v) for k, v in diags[-1]['controller'].items()}
    assert WATCHDOG < c['last_stop_decel_after_s'] <= WATCHDOG + 2 * PERIOD, c
    assert c['last_stop_zero_after_s'] <= c['last_stop_decel_after_s'] + 2.0 / DECEL + PERIOD
    assert c['fail_safe_stops'] == 1
    assert cmds[-1]['v'] == 0.0
