"""make demo: sim camera -> perception -> controller on the built-in default, with a summary.

Starts sim_node, perception_node and controller_node (the bringup entry point, same YAML as the
launch files) on one executor, drives the course for ``--seconds`` of sim time, then prints a
summary table (frames, operating-point histogram, deadline misses, latency p50/p99, drops,
collisions, mean speed) and writes plots under ``demo_out/``.
"""

import argparse
from collections import Counter
import json
from pathlib import Path
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from tts_perception.ros_domain import isolate_this_process


def _plots(records: List[Dict], speeds: List[tuple], out: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    t = np.array([r['stamp_ns'] for r in records]) / 1e9
    keys = sorted({r['point'] for r in records}, key=lambda k: (int(k.split('x')[0]), k))
    fig, ax = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    ax[0].plot(t, [r['total_ms'] for r in records], lw=0.7, label='latency')
    ax[0].plot(t, [r['deadline_ms'] for r in records], 'r--', lw=0.8, label='deadline')
    ax[0].set_ylabel('ms')
    ax[0].legend(fontsize=7)
    ax[1].plot(t, [keys.index(r['point']) for r in records], '.', ms=2)
    ax[1].set_yticks(range(len(keys)))
    ax[1].set_yticklabels(keys, fontsize=6)
    ax[1].set_ylabel('operating point')
    ax[2].plot(t, [r['complexity'] for r in records], lw=0.7)
    ax[2].set_ylabel('complexity')
    if speeds:
        st, lim, cmd = zip(*speeds)
        ax[3].plot(st, lim, lw=0.8, label='speed limit')
        ax[3].plot(st, cmd, lw=0.8, label='commanded')
        ax[3].legend(fontsize=7)
    ax[3].set_ylabel('m/s')
    ax[3].set_xlabel('sim time (s)')
    fig.tight_layout()
    fig.savefig(out / 'demo_timeline.png', dpi=100)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo and print its summary."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--seconds', type=float, default=60.0, help='sim seconds to drive')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', type=Path, default=Path('demo_out'))
    ap.add_argument('--deadline-ms', type=float, default=None)
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--height', type=int, default=480)
    a = ap.parse_args(argv)
    dom = isolate_this_process()
    import rclpy
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.executors import MultiThreadedExecutor
    from tts_perception.nodes.bringup import build_nodes
    from tts_perception.nodes.ros_util import values_of

    rclpy.init()
    per_ov = [f'deadline_ms:={a.deadline_ms}'] if a.deadline_ms else []
    sim, per, ctl = build_nodes([f'seed:={a.seed}', f'max_sim_time:={a.seconds}',
                                 f'width:={a.width}', f'height:={a.height}'], per_ov)
    records: List[Dict] = []
    speeds: List[tuple] = []

    def on_status(msg: DiagnosticStatus) -> None:
        v = values_of(msg)
        r = {k: v[k] for k in ('point', 'reason')}
        for k in ('total_ms', 'measured_ms', 'deadline_ms', 'complexity', 'predicted_ms',
                  'predicted_accuracy'):
            r[k] = float(v[k])
        r['missed'] = v['missed'] == 'True'
        r['stamp_ns'] = int(v['stamp_ns'])
        records.append(r)
    ctl.create_subscription(DiagnosticStatus, 'perception/status', on_status, 50)

    def sample_speed() -> None:
        speeds.append((sim.sim_ns / 1e9, ctl.gov.v_limit, ctl.gov.v_cmd))
    ctl.create_timer(0.1, sample_speed)
    ex = MultiThreadedExecutor(num_threads=4)
    for n in (sim, per, ctl):
        ex.add_node(n)
    t0 = time.monotonic()
    print(f'[demo] ROS_DOMAIN_ID={dom}: sim -> perception ({per.pipeline.backend_name}, '
          f'{len(per.pipeline.points)} points) -> controller; course seed {a.seed}, '
          f'{a.seconds:.0f}s of sim time', flush=True)
    try:
        while rclpy.ok() and not sim.finished:
            ex.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    s = sim.summary()
    slot = next(iter(per.slots.values()))
    wall = time.monotonic() - t0
    # quiesce before destroying: no timer may fire into a node being destroyed
    for n in (sim, per, ctl):
        for tm in list(n.timers):
            tm.cancel()
    for _ in range(10):
        ex.spin_once(timeout_sec=0.01)
    ex.shutdown(timeout_sec=5.0)
    for n in (sim, per, ctl):
        n.destroy_node()
    rclpy.try_shutdown()

    a.out.mkdir(parents=True, exist_ok=True)
    lat = np.array([r['total_ms'] for r in records]) if records else np.zeros(1)
    hist = Counter(r['point'] for r in records)
    misses = sum(r['missed'] for r in records)
    mean_speed = float(np.mean([c for _, _, c in speeds])) if speeds else 0.0
    summary = {
        'sim_time_s': s['sim_time'], 'wall_s': wall, 'real_time_factor': s['real_time_factor'],
        'frames_rendered': s['frames'], 'frames_received': slot.received,
        'frames_processed': len(records), 'dropped': slot.dropped, 'stale': slot.stale,
        'deadline_ms': records[0]['deadline_ms'] if records else None,
        'deadline_misses': int(misses), 'latency_p50_ms': float(np.percentile(lat, 50)),
        'latency_p99_ms': float(np.percentile(lat, 99)), 'point_histogram': dict(hist),
        'collisions': s['collisions'], 'progress': s['progress'], 'mean_speed': mean_speed,
        'fail_safe_stops': ctl.stops}
    (a.out / 'summary.json').write_text(json.dumps(summary, indent=1))
    (a.out / 'records.json').write_text(json.dumps(records))
    _plots(records, speeds, a.out)
    print('\n==== tts_perception demo summary ====')
    print(f'sim time      {s["sim_time"]:.1f} s (wall {wall:.1f} s, real-time factor '
          f'{s["real_time_factor"]:.2f})')
    print(f'frames        rendered {s["frames"]}, received {slot.received}, processed '
          f'{len(records)}, dropped (newer frame won) {slot.dropped}, stale {slot.stale}')
    print(f'deadline      {summary["deadline_ms"]} ms: {misses} misses '
          f'({100 * misses / max(1, len(records)):.1f} %)')
    print(f'latency       p50 {summary["latency_p50_ms"]:.1f} ms, p99 '
          f'{summary["latency_p99_ms"]:.1f} ms')
    print('points        ' + ', '.join(f'{k} {v}' for k, v in sorted(
        hist.items(), key=lambda kv: -kv[1])))
    print(f'course        progress {100 * s["progress"]:.0f} %, collisions {s["collisions"]}, '
          f'mean speed {mean_speed:.2f} m/s, fail-safe stops {ctl.stops}')
    print(f'plots         {a.out / "demo_timeline.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
