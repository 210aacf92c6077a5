"""make demo: sim camera -> perception -> controller on the built-in world, with a summary.

Starts sim_node, perception_node and controller_node as separate processes, as
``launch/sim.launch.py`` does (the bring-up tool; same YAML, remaps and Fast DDS profile),
drives the course for ``--seconds`` of sim time while a monitor node in this process records
every decision record, the commanded speed and the nodes' ``/diagnostics``; then stops the
nodes (SIGINT: they shut down cleanly, the controller sends a zero command), prints a summary
table (frames, operating-point histogram, deadline misses, latency p50/p99, drops, collisions,
mean speed, fail-safe stops) and writes ``demo_out/`` (summary.json, records.json,
demo_timeline.png). ``--max-wall`` bounds the wall time whatever the machine does.
"""

import argparse
from collections import Counter
import json
from pathlib import Path
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

MAX_WALL_S = 170.0     # the demo stops after this many wall seconds whatever the sim time
TASK_MODELS = {'segmentation': 'models/tts_segnet', 'detection': 'models/tts_detnet'}


def _plots(records: List[Dict], speeds: List[tuple], limits: List[tuple], out: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from tts_perception.common.plotting import plot_points
    t = np.array([r['stamp_ns'] for r in records]) / 1e9
    fig, ax = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    ax[0].plot(t, [r['total_ms'] for r in records], lw=0.7, label='latency')
    ax[0].plot(t, [r['deadline_ms'] for r in records], 'r--', lw=0.8, label='deadline')
    ax[0].set_ylabel('ms')
    ax[0].legend(fontsize=7)
    plot_points(ax[1], t, [r['point'] for r in records], ms=2)
    ax[1].set_ylabel('operating point')
    ax[2].plot(t, [r['complexity'] for r in records], lw=0.7)
    ax[2].set_ylabel('complexity')
    if limits:
        ax[3].plot(*zip(*limits), lw=0.8, label='speed limit')
    if speeds:
        ax[3].plot(*zip(*speeds), lw=0.8, label='commanded')
    ax[3].legend(fontsize=7)
    ax[3].set_ylabel('m/s')
    ax[3].set_xlabel('sim time (s)')
    fig.tight_layout()
    fig.savefig(out / 'demo_timeline.png', dpi=100)
    plt.close(fig)


class DemoMonitor:
    """Listens to the running nodes (sim time) and keeps what the summary needs."""

    def __init__(self, keep_records: bool = True):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from geometry_msgs.msg import Twist
        from rclpy.node import Node
        from rclpy.parameter import Parameter
        from tts_perception.nodes.ros_util import values_of
        self.node = Node('demo_monitor',
                         parameter_overrides=[Parameter('use_sim_time', value=True)])
        self.records: List[Dict] = []
        self.speeds: List[tuple] = []
        self.limits: List[tuple] = []
        self.diag: Dict[str, Dict[str, str]] = {}

        def on_status(msg: DiagnosticStatus) -> None:
            if not keep_records:
                return
            v = values_of(msg)
            r = {k: v[k] for k in ('point', 'reason')}
            for k in ('total_ms', 'measured_ms', 'deadline_ms', 'complexity', 'predicted_ms',
                      'predicted_accuracy', 'wait_ms', 'transport_ms'):
                r[k] = float(v[k])
            r['missed'] = v['missed'] == 'True'
            r['stamp_ns'] = int(v['stamp_ns'])
            self.records.append(r)

        def on_diag(msg: DiagnosticArray) -> None:
            for st in msg.status:
                vals = values_of(st)
                self.diag[st.name.split(':')[0]] = {**vals, '_message': st.message}
                if st.name == 'controller_node' and keep_records:
                    self.limits.append((self._sim_s(), float(vals['speed_limit'])))

        def on_cmd(msg: Twist) -> None:
            if keep_records:
                self.speeds.append((self._sim_s(), msg.linear.x))
        self.node.create_subscription(DiagnosticStatus, 'perception/status', on_status, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 50)
        self.node.create_subscription(Twist, 'cmd_vel', on_cmd, 50)

    def _sim_s(self) -> float:
        return self.node.get_clock().now().nanoseconds / 1e9

    def get(self, node: str, key: str, default: float = 0.0) -> float:
        v = self.diag.get(node, {}).get(key)
        try:
            return float(v) if v is not None else default
        except ValueError:
            return default


def _arguments(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--seconds', type=float, default=60.0, help='sim seconds to drive')
    ap.add_argument('--task', choices=tuple(TASK_MODELS), default='segmentation',
                    help='the bundled segmenter, or the bundled detector (boxes drive the '
                    'controller)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', type=Path, default=Path('demo_out'))
    ap.add_argument('--deadline-ms', type=float, default=None)
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--height', type=int, default=480)
    ap.add_argument('--course-length', type=float, default=None)
    ap.add_argument('--max-wall', type=float, default=MAX_WALL_S,
                    help='stop after this many wall seconds whatever the sim time')
    ap.add_argument('--verbose', action='store_true', help='show the nodes\' log lines')
    ap.add_argument('--no-record', dest='record', action='store_false',
                    help='do not write the run into docs/results.md')
    return ap.parse_args(argv)


def _overrides(a: argparse.Namespace) -> Dict[str, List[str]]:
    """The nodes' parameter overrides for this run."""
    sim_ov = [f'seed:={a.seed}', f'max_sim_time:={a.seconds}', f'width:={a.width}',
              f'height:={a.height}']
    if a.course_length:
        sim_ov.append(f'course_length:={a.course_length}')
    per_ov = [f'deadline_ms:={a.deadline_ms}'] if a.deadline_ms else []
    per_ov += ['diagnostics_period:=0.5', f'model_path:={TASK_MODELS[a.task]}']
    return {'sim_node': sim_ov, 'perception_node': per_ov,
            'controller_node': ['diagnostics_period:=0.2']}


def _drive(a: argparse.Namespace, mon: 'DemoMonitor', ex, la, t0: float):
    """Start the stack and spin until the sim finishes, a node exits or the wall bound;
    (how it ended, fail-safe stops made while driving or None)."""
    from tts_perception.nodes.bringup import start_sim_stack
    start_sim_stack(la, _overrides(a))
    print(f'[demo] perception active after {time.monotonic() - t0:.0f} s; driving', flush=True)
    next_report = time.monotonic() + 10.0
    while True:
        ex.spin_once(timeout_sec=0.1)
        if mon.diag.get('sim_node', {}).get('finished') == 'True':
            # the camera stops here, so the controller's watchdog stops the robot next:
            # count the fail-safe stops made while driving
            return 'finished', int(mon.get('controller_node', 'fail_safe_stops'))
        if la.exited():
            return f'a node exited: {la.exited()}', None
        if time.monotonic() - t0 > a.max_wall:
            return f'stopped at the {a.max_wall:.0f} s wall-clock bound', None
        if time.monotonic() > next_report:
            next_report += 10.0
            print(f'[demo] sim {mon.get("sim_node", "sim_time"):5.1f} s / {a.seconds:.0f}'
                  f' s, frames processed {len(mon.records)}, progress '
                  f'{100 * mon.get("sim_node", "progress"):.0f} %', flush=True)


def _summary(mon: 'DemoMonitor', ended: str, codes: Dict, wall: float,
             stops_at_end: Optional[int]) -> Dict[str, Any]:
    """The run's figures, from what the monitor heard."""
    records, g = mon.records, mon.get
    lat = np.array([r['total_ms'] for r in records]) if records else np.zeros(1)
    return {
        'ended': ended, 'exit_codes': codes, 'sim_time_s': g('sim_node', 'sim_time'),
        'wall_s': wall, 'real_time_factor': g('sim_node', 'real_time_factor'),
        'frames_rendered': int(g('sim_node', 'frames')),
        'frames_received': int(g('perception_node', 'received')),
        'frames_processed': len(records), 'dropped': int(g('perception_node', 'dropped')),
        'stale': int(g('perception_node', 'stale')), 'tail': int(g('perception_node', 'tail')),
        'deadline_ms': records[0]['deadline_ms'] if records else None,
        'deadline_misses': int(sum(r['missed'] for r in records)),
        'latency_p50_ms': float(np.percentile(lat, 50)),
        'latency_p99_ms': float(np.percentile(lat, 99)),
        'point_histogram': dict(Counter(r['point'] for r in records)),
        'collisions': int(g('sim_node', 'collisions')), 'progress': g('sim_node', 'progress'),
        'mean_speed': float(np.mean([v for _, v in mon.speeds])) if mon.speeds else 0.0,
        'fail_safe_stops': stops_at_end if stops_at_end is not None
        else int(g('controller_node', 'fail_safe_stops'))}


def _points(m: Dict[str, Any], top: Optional[int] = None) -> str:
    hist = sorted(m['point_histogram'].items(), key=lambda kv: -kv[1])
    return ', '.join(f'{k} {v}' for k, v in hist[:top])


def _print_summary(m: Dict[str, Any], out: Path) -> None:
    n, rendered, misses = m['frames_processed'], m['frames_rendered'], m['deadline_misses']
    print('\n==== tts_perception demo summary ====')
    print(f'run           {m["ended"]}; node exit codes {m["exit_codes"]}')
    print(f'sim time      {m["sim_time_s"]:.1f} s (wall {m["wall_s"]:.1f} s, real-time factor '
          f'{m["real_time_factor"]:.2f})')
    print(f'frames        rendered {rendered}, received {m["frames_received"]}, '
          f'processed {n} ({100 * n / max(1, rendered):.1f} %), dropped '
          f'(newer frame won) {m["dropped"]}, stale {m["stale"]}, held for the '
          f'next (shrinking tail) {m["tail"]}')
    print(f'deadline      {m["deadline_ms"]} ms: {misses} misses '
          f'({100 * misses / max(1, n):.1f} %)')
    print(f'latency       p50 {m["latency_p50_ms"]:.1f} ms, p99 {m["latency_p99_ms"]:.1f} ms')
    print('points        ' + _points(m))
    print(f'course        progress {100 * m["progress"]:.0f} %, collisions '
          f'{m["collisions"]}, mean speed {m["mean_speed"]:.2f} m/s, fail-safe stops '
          f'{m["fail_safe_stops"]}')
    print(f'plots         {out / "demo_timeline.png"}')


def _record(a: argparse.Namespace, m: Dict[str, Any]) -> None:
    """The run's section of docs/results.md."""
    from tts_perception.tools.results import record
    n, rendered, misses = m['frames_processed'], m['frames_rendered'], m['deadline_misses']
    rows = (('run', m['ended']), ('wall time', f'{m["wall_s"]:.0f} s'),
            ('real-time factor', f'{m["real_time_factor"]:.2f}'),
            ('frames rendered / processed', f'{rendered} / {n} '
             f'({100 * n / max(1, rendered):.1f} %)'),
            ('dropped (newer frame won) / stale', f'{m["dropped"]} / {m["stale"]}'),
            ('deadline misses', f'{misses} ({100 * misses / max(1, n):.1f} %) '
             f'at {m["deadline_ms"]} ms'),
            ('latency p50 / p99', f'{m["latency_p50_ms"]:.1f} / {m["latency_p99_ms"]:.1f} ms'),
            ('course progress, collisions', f'{100 * m["progress"]:.0f} %, {m["collisions"]}'),
            ('mean speed', f'{m["mean_speed"]:.2f} m/s'),
            ('fail-safe stops', m['fail_safe_stops']), ('operating points', _points(m, 5)))
    body = '\n'.join(['| | |', '|---|---|'] + [f'| {k} | {v} |' for k, v in rows])
    task = '' if a.task == 'segmentation' else f' --task {a.task}'
    cmd = ('make demo' + ('' if not task else f' TASK={a.task}')) if a.seconds == 60 else \
        f'python -m tts_perception.tools.demo --seconds {a.seconds:g}{task}' + \
        (f' --course-length {a.course_length:g}' if a.course_length else '') + \
        (f' --max-wall {a.max_wall:g}' if a.max_wall != MAX_WALL_S else '')
    name = 'demo' if a.task == 'segmentation' else f'demo-{a.task}'
    what = 'perception' if a.task == 'segmentation' else 'a detector'
    record(f'{name}-{a.seconds:g}s', f'Closed loop: sim, {what} and controller as '
           f'processes, {a.seconds:g} s of sim time (seed {a.seed})', cmd, body)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo and print its summary."""
    a = _arguments(argv)
    from tts_perception.nodes.bringup import Launcher
    from tts_perception.nodes.dds import use_profile
    from tts_perception.nodes.ros_domain import isolate_this_process
    dom = isolate_this_process()
    use_profile()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    t0 = time.monotonic()
    print(f'[demo] ROS_DOMAIN_ID={dom}: sim_node -> perception_node ({a.task}) -> '
          f'controller_node, each in its own process; course seed {a.seed}, '
          f'{a.seconds:.0f} s of sim time', flush=True)
    rclpy.init()
    mon = DemoMonitor()
    ex = SingleThreadedExecutor()
    ex.add_node(mon.node)
    la = Launcher(quiet=not a.verbose)
    ended, stops_at_end = 'interrupted', None
    try:
        ended, stops_at_end = _drive(a, mon, ex, la, t0)
        end = time.monotonic() + 1.0   # the last outputs and aggregates still in flight
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
    except KeyboardInterrupt:
        ended = 'interrupted'
    finally:
        codes = la.stop()
        ex.shutdown()
        mon.node.destroy_node()
        rclpy.try_shutdown()
    summary = _summary(mon, ended, codes, time.monotonic() - t0, stops_at_end)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / 'summary.json').write_text(json.dumps(summary, indent=1))
    (a.out / 'records.json').write_text(json.dumps(mon.records))
    _plots(mon.records, mon.speeds, mon.limits, a.out)
    _print_summary(summary, a.out)
    if a.record:
        _record(a, summary)
    return 0 if ended == 'finished' and all(c == 0 for c in codes.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
