"""make soak: sim, perception and controller as separate processes for a long time; memory,
rates and counters sampled throughout.

    python -m tts_perception.tools.soak [--minutes 20] [--out bench/results/soak.json]

Every ``--every`` seconds: resident memory of each node (/proc), perception's counters and
waiting frames, the controller's fail-safe stops, the sim's frame count. Passes when each
node's resident memory grows < 5 % from the end of the warm-up (the first fifth) to the end,
no frame ever waits beyond one per camera, the counters add up (received = processed +
dropped + stale + future + bad + errors), and the controller made no fail-safe stop. Writes
JSON and a plot of memory and rates over time; exit code 1 if a check fails.
"""

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np


def rss_mb(pid: int) -> float:
    """Resident memory of a process (MB), 0 if it is gone."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def check(samples: List[Dict], final: Dict[str, int], warm_frac: float = 0.2) -> Dict:
    """The soak's pass/fail checks on its samples (pure, unit-tested)."""
    out: Dict = {'rss_growth_pct': {}, 'failures': []}
    warm = samples[min(len(samples) - 1, int(len(samples) * warm_frac))]
    for node, mb in samples[-1]['rss_mb'].items():
        g = 100.0 * (mb - warm['rss_mb'][node]) / max(warm['rss_mb'][node], 1e-9)
        out['rss_growth_pct'][node] = g
        if g >= 5.0:
            out['failures'].append(f'{node} resident memory grew {g:.1f} % (>= 5 %)')
    waiting = max(s['perception'].get('waiting', 0) for s in samples)
    out['max_waiting'] = waiting
    if waiting > 1:
        out['failures'].append(f'{waiting} frames waiting in perception (> 1 per camera)')
    parts = sum(final.get(k, 0)
                for k in ('processed', 'dropped', 'stale', 'future', 'tail', 'bad_frames',
                          'errors'))
    out['counters'] = dict(final, accounted=parts)
    if final.get('received', 0) - parts not in (0, 1):     # one may be in flight
        out['failures'].append(f'counters do not add up: received {final.get("received")} '
                               f'vs accounted {parts}')
    stops = samples[-1]['fail_safe_stops']
    if stops:
        out['failures'].append(f'{stops} fail-safe stops without an injected fault')
    out['passed'] = not out['failures']
    return out


def plot(samples: List[Dict], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    t = np.array([s['t'] for s in samples]) / 60.0
    fig, ax = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for node in samples[0]['rss_mb']:
        ax[0].plot(t, [s['rss_mb'][node] for s in samples], label=node)
    ax[0].set_ylabel('resident memory (MB)')
    ax[0].legend(fontsize=7)
    proc = np.array([s['perception'].get('processed', 0) for s in samples], float)
    frames = np.array([s['sim_frames'] for s in samples], float)
    dt = np.diff(np.array([s['t'] for s in samples]))
    ax[1].plot(t[1:], np.diff(frames) / dt, label='rendered frames/s')
    ax[1].plot(t[1:], np.diff(proc) / dt, label='processed frames/s')
    ax[1].set_ylabel('rate (1/s)')
    ax[1].set_xlabel('minutes')
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


KEYS = ('received', 'processed', 'dropped', 'stale', 'future', 'tail', 'bad_frames', 'errors',
        'waiting', 'missed')


def _sample(mon, la, t0: float) -> Dict:
    """Memory of every node and the counters, now."""
    return {'t': time.monotonic() - t0,
            'rss_mb': {n: rss_mb(p.pid) for n, p in la.procs.items()},
            'perception': {k: int(mon.get('perception_node', k)) for k in KEYS},
            'fail_safe_stops': int(mon.get('controller_node', 'fail_safe_stops')),
            'sim_frames': int(mon.get('sim_node', 'frames'))}


def _run(a: argparse.Namespace, mon, ex, la, samples: List[Dict]):
    """Drive for ``a.minutes``, sampling; then stop the camera and let perception drain.
    (the nodes that exited early, the final counters)."""
    from tts_perception.nodes.bringup import start_sim_stack
    start_sim_stack(la, {'sim_node': ['course_length:=200.0'],
                         'perception_node': ['diagnostics_period:=0.5'],
                         'controller_node': []})
    t0 = time.monotonic()
    next_t, end = t0, t0 + 60.0 * a.minutes
    while time.monotonic() < end and not la.exited():
        ex.spin_once(timeout_sec=0.05)
        if time.monotonic() >= next_t:
            next_t += a.every
            samples.append(_sample(mon, la, t0))
            if len(samples) % max(1, int(60 / a.every)) == 0:
                s = samples[-1]
                print(f'[soak] {s["t"] / 60:4.1f} min: processed '
                      f'{s["perception"]["processed"]}, rss ' + ', '.join(
                          f'{n} {mb:.0f} MB' for n, mb in s['rss_mb'].items()), flush=True)
    exited = la.exited()
    la.procs['sim_node'].send_signal(2)            # no new frames: let perception drain
    drain = time.monotonic() + 2.0
    while time.monotonic() < drain:
        ex.spin_once(timeout_sec=0.05)
    return exited, {k: int(mon.get('perception_node', k)) for k in KEYS}


def _record(a: argparse.Namespace, res: Dict, final: Dict[str, int], growth: str) -> None:
    """The run's section of docs/results.md."""
    from tts_perception.tools.results import record
    body = (f'{a.minutes:g} min, sampled every {a.every:g} s. Resident memory growth after '
            f'the warm-up: {growth}. Frames processed {final["processed"]} of '
            f'{final["received"]} received (dropped {final["dropped"]}, stale '
            f'{final["stale"]}); at most {res["max_waiting"]} frame waiting; fail-safe '
            f'stops {res["samples"][-1]["fail_safe_stops"]}. '
            + ('Passed.' if res['passed'] else 'Failed: ' + '; '.join(res['failures'])))
    cmd = 'make soak' if a.minutes == 20 else \
        f'python -m tts_perception.tools.soak --minutes {a.minutes:g}'
    record(f'soak-{a.minutes:g}min', f'Soak: {a.minutes:g} minutes', cmd, body)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the soak; print the checks; exit 1 if one fails."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--minutes', type=float, default=20.0)
    ap.add_argument('--every', type=float, default=5.0, help='sampling period (s)')
    ap.add_argument('--out', type=Path, default=Path('bench/results/soak.json'))
    ap.add_argument('--no-record', dest='record', action='store_false',
                    help='do not write the run into docs/results.md')
    a = ap.parse_args(argv)
    from tts_perception.nodes.bringup import Launcher
    from tts_perception.nodes.dds import use_profile
    from tts_perception.nodes.ros_domain import isolate_this_process
    from tts_perception.tools.demo import DemoMonitor
    dom = isolate_this_process()
    use_profile()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    print(f'[soak] ROS_DOMAIN_ID={dom}: {a.minutes:g} min, sim + perception + controller as '
          f'processes, sampled every {a.every:g} s', flush=True)
    rclpy.init()
    mon = DemoMonitor(keep_records=False)
    ex = SingleThreadedExecutor()
    ex.add_node(mon.node)
    la = Launcher(quiet=True)
    samples: List[Dict] = []
    try:
        exited, final = _run(a, mon, ex, la, samples)
    finally:
        codes = la.stop()
        ex.shutdown()
        mon.node.destroy_node()
        rclpy.try_shutdown()
    res = {'minutes': a.minutes, 'samples': samples, 'exit_codes': codes,
           'exited_early': exited, **check(samples, final)}
    if exited:
        res['failures'].append(f'nodes exited during the soak: {exited}')
        res['passed'] = False
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    plot(samples, a.out.with_suffix('.png'))
    growth = ', '.join(f'{n} {g:+.2f} %' for n, g in res['rss_growth_pct'].items())
    print(f'[soak] resident memory after warm-up: {growth}; max waiting frames '
          f'{res["max_waiting"]}; counters {res["counters"]}; fail-safe stops '
          f'{samples[-1]["fail_safe_stops"]}')
    print('[soak] ' + ('PASSED' if res['passed'] else 'FAILED: ' + '; '.join(res['failures'])))
    if a.record:
        _record(a, res, final, growth)
    return 0 if res['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
