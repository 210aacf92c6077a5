"""sim_node in its own process over real DDS: a second process receives its camera images."""

import pytest
import json

from conftest import ROOT

pytestmark = pytest.mark.dds


def _lines(proc, timeout):
    out, _ = proc.communicate(timeout=timeout)
    return [json.loads(line) for line in out.splitlines() if line.startswith('{')], out


def test_two_processes_exchange_camera_images(procs):
    procs.python('-m', 'tts_perception.nodes.sim_node', '--ros-args', '-p', 'width:=160',
                 '-p', 'height:=120', '-p', 'drive_scripted:=true', '-p', 'camera_rate:=20.0')
    probe = procs.python(str(ROOT / 'test' / 'ros_probe.py'),
                         'camera/image_raw:sensor_msgs/msg/Image',
                         '/diagnostics:diagnostic_msgs/msg/DiagnosticArray',
                         '--count', '3', '--timeout', '60')
    msgs, out = _lines(probe, 90)
    assert probe.returncode == 0, out
    imgs = [m for m in msgs if m.get('topic') == 'camera/image_raw']
    assert len(imgs) >= 3
    assert all(m['width'] == 160 and m['height'] == 120 and m['encoding'] == 'rgb8'
               for m in imgs)
    assert all(m['mean'] > 10 for m in imgs)
    stamps = [m['stamp_ns'] for m in imgs]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # sim time: stamps are multiples of the camera period (50 ms at 20 Hz)
    assert all(s % 50_000_000 == 0 for s in stamps)
    diags = [s for m in msgs if m.get('topic') == '/diagnostics' for s in m['status']]
    course = [d for d in diags if d['name'] == 'sim_node: course']
    assert course and 'collisions' in course[-1]['values']
    assert float(course[-1]['values']['progress']) >= 0.0


def test_live_recorder_writes_a_readable_bag(procs, tmp_path):
    from tts_perception.bag.rosbag import bag_topics, read_frames
    procs.python('-m', 'tts_perception.nodes.sim_node', '--ros-args', '-p', 'width:=64',
                 '-p', 'height:=48', '-p', 'drive_scripted:=true', '-p', 'camera_rate:=20.0')
    out = tmp_path / 'live'
    rec = procs.python('-m', 'tts_perception.bag.record', 'live', '--out', str(out),
                       '--topics', 'camera/image_raw', 'odom', '--seconds', '3')
    text, _ = rec.communicate(timeout=60)
    assert rec.returncode == 0, text
    topics = bag_topics(out)
    assert topics['/camera/image_raw'] == 'sensor_msgs/msg/Image'
    assert topics['/odom'] == 'nav_msgs/msg/Odometry'
    frames = list(read_frames(out))
    assert len(frames) >= 5 and frames[0].rgb.shape == (48, 64, 3)


def test_sim_node_answers_parameters_and_reports_while_rendering_640x480(procs, ros_env):
    """Rendering runs on its own thread: parameter services and /diagnostics stay live."""
    import time
    from diagnostic_msgs.msg import DiagnosticArray
    from rcl_interfaces.srv import GetParameters
    from ros_client import RosClient
    procs.python('-m', 'tts_perception.nodes.sim_node', '--ros-args', '-p', 'width:=640',
                 '-p', 'height:=480', '-p', 'drive_scripted:=true', '-p', 'max_sim_time:=4.0',
                 '-p', 'real_time_factor:=0.0')
    client = RosClient(int(ros_env['ROS_DOMAIN_ID']))
    try:
        diags = client.listen('/diagnostics', DiagnosticArray)
        assert client.wait_for(lambda: diags, 60)
        for _ in range(3):                      # answered promptly, every time
            t0 = time.monotonic()
            req = GetParameters.Request(names=['width', 'seed'])
            res = client._call(GetParameters, '/sim_node/get_parameters', req, timeout=5.0)
            assert [v.integer_value for v in res.values] == [640, 0]
            assert time.monotonic() - t0 < 2.0
        course = lambda: [s for d in diags for s in d.status if s.name == 'sim_node: course']  # noqa
        assert client.wait_for(lambda: any(
            {k.key: k.value for k in s.values}['finished'] == 'True' for s in course()), 60)
        last = {k.key: k.value for k in course()[-1].values}
        assert float(last['sim_time']) == pytest.approx(4.0, abs=0.05)
        assert {'progress', 'collisions', 'course_complete'} <= set(last)
        n = len(course())
        assert client.wait_for(lambda: len(course()) >= n + 2, 5)   # still reporting
    finally:
        client.close()


def _until_line(proc, text, timeout):
    """Read the process's output until a line contains ``text``; the lines read.

    Reads the pipe's file descriptor itself: ``readline`` on the buffered text stream may pull
    two lines into Python's buffer and return one, and ``select`` on the descriptor then never
    reports the second (the sim logs two lines at once and then nothing while it waits)."""
    import os
    import selectors
    import time
    sel, data, end = selectors.DefaultSelector(), b'', time.monotonic() + timeout
    sel.register(proc.stdout.fileno(), selectors.EVENT_READ)
    while time.monotonic() < end and text.encode() not in data:
        if sel.select(timeout=max(0.0, end - time.monotonic())):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            data += chunk
    return data.decode(errors='replace').splitlines(keepends=True)


def test_until_line_sees_a_line_that_arrived_with_another(procs):
    # two lines in one write, then silence: the second must still be seen
    proc = procs.python('-c', 'import sys, time; sys.stdout.write("one\\ntwo\\n"); '
                        'sys.stdout.flush(); time.sleep(30)')
    lines = _until_line(proc, 'two', 20)
    assert [ln.strip() for ln in lines] == ['one', 'two']


@pytest.mark.parametrize('wait', [1, 0])
def test_sim_time_starts_when_the_camera_has_a_subscriber(procs, wait):
    # wait_for_subscribers: the first frame a subscriber started after the sim is up gets
    # is the run's first; without it the sim renders while the subscriber's process starts
    sim = procs.python('-m', 'tts_perception.nodes.sim_node', '--ros-args', '-p', 'width:=64',
                       '-p', 'height:=48', '-p', 'drive_scripted:=true', '-p',
                       'camera_rate:=20.0', '-p', f'wait_for_subscribers:={wait}')
    lines = _until_line(sim, 'course seed', 60)     # logged once the render thread runs
    assert any('course seed' in ln for ln in lines), lines
    probe = procs.python(str(ROOT / 'test' / 'ros_probe.py'),
                         'camera/image_raw:sensor_msgs/msg/Image', '--count', '3',
                         '--timeout', '60')
    msgs, out = _lines(probe, 90)
    assert probe.returncode == 0, out
    stamps = [m['stamp_ns'] for m in msgs if m.get('topic') == 'camera/image_raw']
    assert len(stamps) >= 3
    # frames are stamped at the end of their 50 ms period; with the wait the first may cross
    # discovery's last step (the reader matching the writer): allow two more. A subscriber
    # process takes well over those 150 ms to start
    if wait:
        assert stamps[0] <= 3 * 50_000_000, stamps
    else:
        assert stamps[0] > 3 * 50_000_000, stamps
