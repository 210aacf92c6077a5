"""make bench-node: perception_node in its own process, fed by a camera in another process.

The ros2_benchmark practice: a separate player process (``tts_perception.tools.frame_player``)
publishes recorded frames at fixed rates; perception_node runs as ``ros2 launch`` starts it
(its own process, the shipped parameters and Fast DDS profile); this process only listens to
``camera/segmentation`` (stamps read from the raw CDR, so listening costs almost nothing),
``perception/status`` and ``/diagnostics``. Per run: frames sent / received / processed /
dropped (a newer frame won) / stale; end-to-end latency (publish -> segmentation received);
ROS overhead = end-to-end - the pipeline's own total; the longest gap between outputs; node
CPU (from /proc). Also: the CPU of an active node without input, the executors compared at one
load, and cameras as they come: a player with no Fast DDS profile of ours (as a driver started
from the robot's own launch file), reliable and best effort, with the node's
``lost_in_transport`` estimate set against the frames really lost (sent - received). Runs on
the ROS 2 distribution of the environment (``make bench-node DISTRO=jazzy|kilted``); writes
``bench/results/node_<distro>.json``, ``.png``, its section of docs/results.md and a table.

    python bench/bench_node.py                 # full: 10/15/30/60 Hz x 640x480/320x240 x
                                               # raw/compressed, ~5 min
    python bench/bench_node.py --quick         # one short run (CI-sized)
    python bench/bench_node.py --tag cuda --sizes 640x480 --executors ''
                                               # as scripts/gpu_node_check.sh runs it
"""

import argparse
import json
import os
from pathlib import Path
import struct
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts_perception.inference.model_desc import load_model_description  # noqa: E402
from tts_perception.nodes.ros_domain import isolate_this_process  # noqa: E402
from tts_perception.nodes.dds import dds_env  # noqa: E402

TICK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (s)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cdr_stamp_ns(data: bytes) -> int:
    """Header stamp of a serialized message that starts with std_msgs/Header."""
    sec, nsec = struct.unpack_from('<iI', data, 4)
    return sec * 1_000_000_000 + nsec


class Monitor:
    """Listens to the node's outputs in this process (own context, own thread)."""

    def __init__(self, domain: int, output: str = 'segmentation'):
        """``output``: the node's per-frame topic beside the camera (``detections`` for a
        detector)."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from sensor_msgs.msg import Image
        from vision_msgs.msg import Detection2DArray
        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=domain)
        self.node = Node('bench_monitor', context=self.ctx)
        self.lock = threading.Lock()
        self.outputs: List[tuple] = []          # (stamp_ns, recv_ns)
        self.totals: Dict[int, tuple] = {}      # stamp -> (total_ms, wait_ms, transport_ms)
        self.diag: Optional[Dict[str, str]] = None
        self.node.create_subscription(Detection2DArray if output == 'detections' else Image,
                                      f'camera/{output}', self._on_seg, 50, raw=True)
        self.node.create_subscription(DiagnosticStatus, 'perception/status', self._on_status,
                                      50)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self._run = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self._run:
            self.ex.spin_once(timeout_sec=0.05)

    def _on_seg(self, data: bytes) -> None:
        now = time.time_ns()
        with self.lock:
            self.outputs.append((cdr_stamp_ns(data), now))

    def _on_status(self, msg) -> None:
        v = {k.key: k.value for k in msg.values}
        with self.lock:
            self.totals[int(v['stamp_ns'])] = (float(v['total_ms']), float(v['wait_ms']),
                                               float(v['transport_ms']))

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name.startswith('perception_node:'):
                with self.lock:
                    self.diag = {k.key: k.value for k in st.values}

    def counters(self) -> Dict[str, int]:
        with self.lock:
            d = dict(self.diag or {})
        keys = ('received', 'processed', 'dropped', 'stale', 'tail', 'bad_frames', 'future',
                'missed', 'lost_in_transport')
        return {k: int(d.get(k, 0)) for k in keys}

    def wait_diag(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.diag is not None:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        import rclpy
        self._run = False
        self.thread.join(timeout=5)
        self.ex.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


def start_node(env: Dict[str, str], executor: str, extra: List[str], log: Path):
    args = [sys.executable, '-m', 'tts_perception.nodes.perception_node', '--autostart',
            '--executor', executor, '--ros-args', '--params-file',
            str(ROOT / 'config' / 'perception.yaml'), '-p', 'diagnostics_period:=0.5', *extra]
    return subprocess.Popen(args, env=env, cwd=str(ROOT), stdout=log.open('w'),
                            stderr=subprocess.STDOUT)


def without_profile(env: Dict[str, str]) -> Dict[str, str]:
    """``env`` as a camera driver from the robot's own launch file has it: no profile."""
    from tts_perception.nodes.dds import PROFILE_VARS
    return {k: v for k, v in env.items() if k not in PROFILE_VARS}


GONE = ('processed', 'dropped', 'stale', 'tail', 'bad_frames', 'future')


def settled(mon: Monitor, before: Dict[str, int], timeout: float = 15.0) -> Dict[str, int]:
    """The node's counters since ``before`` once every frame it received is accounted for
    (processed, dropped, held for the next, stale, bad, future) and its outputs have
    arrived, on two /diagnostics aggregates in a row (or at ``timeout``)."""
    end, last = time.monotonic() + timeout, None
    while True:
        time.sleep(0.5)
        after = mon.counters()
        delta = {k: after[k] - before[k] for k in after}
        with mon.lock:
            outs = len(mon.outputs)
        state = (delta, outs)
        if state == last and delta['received'] == sum(delta[k] for k in GONE) or \
                time.monotonic() > end:
            return delta
        last = state


def run_rate(mon: Monitor, env, node_pid: int, bag: Path, size: str, transport: str,
             rate: float, seconds: float, player: str = 'best_effort, profile') -> Dict:
    """One player run against the running node; counters are deltas of /diagnostics.
    ``player``: its publisher's reliability, then 'profile' (ours) or 'no profile'."""
    reliability, profile = (x.strip() for x in player.split(','))
    time.sleep(1.2)     # let the previous run's outputs and aggregate settle
    before = mon.counters()
    with mon.lock:
        n_out0 = len(mon.outputs)
    cpu0, t0 = cpu_seconds(node_pid), time.monotonic()
    proc = subprocess.run(
        [sys.executable, '-m', 'tts_perception.tools.frame_player', '--bag', str(bag),
         '--size', size, '--rate', str(rate), '--seconds', str(seconds), '--transport',
         transport, '--reliability', reliability],
        env=env if profile == 'profile' else without_profile(env), cwd=str(ROOT),
        capture_output=True, text=True, timeout=300)
    cpu1, t1 = cpu_seconds(node_pid), time.monotonic()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'player failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}')
    sent = json.loads(lines[-1])
    delta = settled(mon, before)
    with mon.lock:
        outs = [o for o in mon.outputs[n_out0:]
                if sent['first_ns'] <= o[0] <= sent['last_ns']]
        totals = dict(mon.totals)
    e2e = np.array([(r - s) / 1e6 for s, r in outs]) if outs else np.zeros(0)
    over = np.array([(r - s) / 1e6 - totals[s][0] for s, r in outs if s in totals])
    wait = np.array([totals[s][1] for s, _ in outs if s in totals])
    recv = np.sort([r for _, r in outs]) / 1e9
    gap = float(np.max(np.diff(recv))) if len(recv) > 1 else float('inf')

    def q(a, p):
        return float(np.percentile(a, p)) if len(a) else float('nan')
    n = sent['sent']
    res = {'size': size, 'transport': transport, 'rate_hz': rate, 'seconds': seconds,
           'sent': n, 'received': delta['received'], 'processed': len(outs),
           'node_processed': delta['processed'],
           'dropped_newest_wins': delta['dropped'], 'held_for_next': delta['tail'],
           'stale': delta['stale'],
           'bad': delta['bad_frames'], 'missed': delta['missed'],
           'player': player,
           'lost_in_transport': n - delta['received'],
           'lost_in_transport_estimate': delta['lost_in_transport'],
           'processed_pct': 100.0 * len(outs) / max(1, n),
           'e2e_p50_ms': q(e2e, 50), 'e2e_p99_ms': q(e2e, 99),
           'ros_overhead_p50_ms': q(over, 50), 'ros_overhead_p99_ms': q(over, 99),
           'wait_in_node_p50_ms': q(wait, 50), 'wait_in_node_p99_ms': q(wait, 99),
           'pipeline_total_p50_ms': q(np.array([totals[s][0] for s, _ in outs if s in totals]),
                                      50),
           'max_output_gap_s': gap, 'node_cpu_pct': 100.0 * (cpu1 - cpu0) / (t1 - t0),
           'player_late': sent['late']}
    print(f"  {size:>7} {transport:>10} {rate:5.0f} Hz [{player}]: sent {n:4d} recv "
          f"{res['received']:4d} "
          f"proc {len(outs):4d} ({res['processed_pct']:5.1f} %) drop {delta['dropped']:3d} "
          f"stale {delta['stale']:3d} lost {n - delta['received']:4d} (node's estimate "
          f"{delta['lost_in_transport']:4d}) | e2e p50 {res['e2e_p50_ms']:5.1f} p99 "
          f"{res['e2e_p99_ms']:5.1f} | ROS overhead p50 {res['ros_overhead_p50_ms']:4.1f} "
          f"p99 {res['ros_overhead_p99_ms']:5.1f} ms | gap {gap:.2f} s | node CPU "
          f"{res['node_cpu_pct']:.0f} %", flush=True)
    return res


def configured_backend(log: Path) -> Optional[str]:
    """The backend (and why) from the node's 'configured in ...' log line, or None."""
    for line in log.read_text(errors='replace').splitlines():
        if 'configured in' in line and ': backend ' in line:
            return line.split(': backend ', 1)[1].split('), ', 1)[0] + ')'
    return None


def idle_cpu(node_pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(node_pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(node_pid) - c0) / (time.monotonic() - t0)


def session(env, bag: Path, executor: str, size: str, transport: str, rates, seconds: float,
            logdir: Path, idle_s: float = 0.0, players=('best_effort, profile',),
            model: str = '') -> Dict:
    """One node process (the shipped model, or ``model``); several player runs against it."""
    dom = int(env['ROS_DOMAIN_ID'])
    extra = ['-p', f'transports:=[{transport}]']
    extra += ['-p', f'model_path:={model}'] if model else []
    node = start_node(env, executor, extra, logdir / f'node_{executor}_{size}_{transport}.log')
    detector = bool(model) and load_model_description(ROOT / model).task == 'detection'
    mon = Monitor(dom, 'detections' if detector else 'segmentation')
    try:
        if not mon.wait_diag(120):
            raise RuntimeError(f'perception_node did not come up; log in {logdir}')
        out = {'executor': executor, 'runs': []}
        if idle_s:
            out['idle_cpu_pct'] = idle_cpu(node.pid, idle_s)
            print(f'  idle active node ({executor} executor): {out["idle_cpu_pct"]:.2f} % of a '
                  f'core', flush=True)
        for player in players:
            for rate in rates:
                out['runs'].append(run_rate(mon, env, node.pid, bag, size, transport, rate,
                                            seconds, player))
        out['backend'] = configured_backend(logdir / f'node_{executor}_{size}_{transport}.log')
        return out
    finally:
        mon.close()
        node.terminate()
        try:
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()


def plot(runs: List[Dict], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for key in sorted({(r['size'], r['transport']) for r in runs}):
        rs = sorted((r for r in runs if (r['size'], r['transport']) == key),
                    key=lambda r: r['rate_hz'])
        x = [r['rate_hz'] for r in rs]
        ax[0].plot(x, [r['processed_pct'] for r in rs], 'o-', label=f'{key[0]} {key[1]}')
        ax[1].plot(x, [r['ros_overhead_p50_ms'] for r in rs], 'o-', label=f'{key[0]} {key[1]} p50')
        ax[1].plot(x, [r['ros_overhead_p99_ms'] for r in rs], 'x--', alpha=0.6,
                   label=f'{key[0]} {key[1]} p99')
    ax[0].axhline(95, color='r', lw=0.8, ls=':')
    ax[0].set(xlabel='camera rate (Hz)', ylabel='frames processed (%)', ylim=(0, 102),
              title='perception_node in its own process')
    ax[1].set(xlabel='camera rate (Hz)', ylabel='ms', title='ROS overhead (end-to-end - pipeline)')
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(res: Dict) -> str:
    rows = ['| input | camera publisher | rate | sent | received | processed | dropped (newest '
            'wins) / held for the next | stale | lost in transport (node\'s estimate) | '
            'e2e p50/p99 ms | '
            'ROS overhead p50/p99 ms | max gap s | node CPU % |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in res['runs']:
        rows.append(f"| {r['size']} {r['transport']} | {r['player']} | {r['rate_hz']:.0f} Hz | "
                    f"{r['sent']} | "
                    f"{r['received']} | {r['processed']} ({r['processed_pct']:.1f} %) | "
                    f"{r['dropped_newest_wins']} / {r['held_for_next']} | "
                    f"{r['stale']} | {r['lost_in_transport']} "
                    f"({r['lost_in_transport_estimate']}) | {r['e2e_p50_ms']:.1f} / "
                    f"{r['e2e_p99_ms']:.1f} | {r['ros_overhead_p50_ms']:.1f} / "
                    f"{r['ros_overhead_p99_ms']:.1f} | {r['max_output_gap_s']:.2f} | "
                    f"{r['node_cpu_pct']:.0f} |")
    return '\n'.join(rows)


def rclpy_version() -> str:
    from importlib import metadata
    try:
        return metadata.version('rclpy')
    except metadata.PackageNotFoundError:
        return 'unknown'


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='one short run (CI-sized)')
    ap.add_argument('--seconds', type=float, default=10.0, help='seconds per rate')
    ap.add_argument('--out', type=Path, default=None,
                    help='default: bench/results/node_<distribution>.json')
    ap.add_argument('--bag', type=Path, default=None, help='frames (default: the sample bag)')
    ap.add_argument('--sizes', default='640x480,320x240',
                    help='camera sizes of the full run, comma-separated')
    ap.add_argument('--executors', default='single,multi',
                    help="executors compared at 640x480 raw, 30 Hz ('' for none)")
    ap.add_argument('--model', default='',
                    help='a model directory other than the shipped default (e.g. '
                    'models/tts_detnet: the node then publishes detections)')
    ap.add_argument('--tag', default='',
                    help="a name for the machine (e.g. cuda): results node_<distribution>_<tag> "
                         "and their own section of docs/results.md")
    a = ap.parse_args(argv)
    suffix = f'_{a.tag}' if a.tag else ''
    dom = isolate_this_process()
    import rclpy
    from tts_perception.nodes.dds import ros_distribution
    from tts_perception.nodes.ros_util import make_executor
    distro = ros_distribution()
    if a.out is None:
        a.out = ROOT / 'bench' / 'results' / f'node_{distro}{suffix}.json'
    rclpy.init()    # only to name the executor that 'auto' resolves to
    make_executor_name = type(make_executor('auto')).__name__
    rclpy.try_shutdown()
    env = dds_env(dict(os.environ))
    env['ROS_DOMAIN_ID'] = str(dom)
    env['PYTHONPATH'] = str(ROOT) + os.pathsep + env.get('PYTHONPATH', '')
    if a.bag is None:
        from tts_perception.bag.record import make_sample_bag
        a.bag = make_sample_bag(quiet=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    logdir = a.out.parent / 'node_logs'
    logdir.mkdir(exist_ok=True)
    t_start = time.time()
    res: Dict = {'machine': {'cpus': os.cpu_count()}, 'ros_distribution': distro, 'runs': [],
                 'executors': {}}
    ours = ('best_effort, profile',)
    as_they_come = ('reliable, no profile', 'best_effort, no profile')
    if a.quick:
        plan = [('auto', '320x240', 'raw', [10.0], 5.0, 2.0, ours)]
        exec_cmp = []
    else:
        rates = [10.0, 15.0, 30.0, 60.0]
        sizes = [x for x in a.sizes.split(',') if x]
        sessions = [(tr, size) for tr in ('raw', 'compressed') for size in sizes]
        # the first session also measures the idle CPU of an active node
        plan = [('auto', size, tr, rates, a.seconds, 5.0 if i == 0 else 0.0, ours)
                for i, (tr, size) in enumerate(sessions)]
        plan.append(('auto', sizes[0], 'raw', [30.0], a.seconds * 2, 0.0, as_they_come))
        exec_cmp = [x for x in a.executors.split(',') if x]
    for i, (ex, size, tr, rates, secs, idle, players) in enumerate(plan):
        print(f'[{i + 1}/{len(plan) + len(exec_cmp)}] {ex} executor, {size} {tr}, camera '
              f'publisher: {" / ".join(players)}', flush=True)
        out = session(env, a.bag, ex, size, tr, rates, secs, logdir, idle, players, a.model)
        res['runs'] += out['runs']
        res.setdefault('backend', out.get('backend'))
        if 'idle_cpu_pct' in out:
            res['idle_cpu_pct'] = out['idle_cpu_pct']
        if size == '640x480' and tr == 'raw' and players == ours:
            r30 = [r for r in out['runs'] if r['rate_hz'] == 30.0]
            res['executors'][f'{ex} ({make_executor_name})'] = {
                'idle_cpu_pct': out.get('idle_cpu_pct'),
                'run_30hz_640x480': r30[0] if r30 else None}
    for j, ex in enumerate(exec_cmp):
        print(f'[{len(plan) + j + 1}/{len(plan) + len(exec_cmp)}] {ex} executor, 640x480 raw',
              flush=True)
        out = session(env, a.bag, ex, '640x480', 'raw', [30.0], a.seconds, logdir, 5.0,
                      model=a.model)
        res['executors'][ex] = {'idle_cpu_pct': out['idle_cpu_pct'],
                                'run_30hz_640x480': out['runs'][0]}
    best = {}
    for r in res['runs']:
        key = f"{r['size']} {r['transport']}"
        if r['processed_pct'] >= 95.0 and r['player'] in ours:
            best[key] = max(best.get(key, 0.0), r['rate_hz'])
    res['highest_rate_under_5pct_loss'] = best
    res['date'] = time.strftime('%Y-%m-%d', time.gmtime(t_start))
    res['wall_s'] = time.time() - t_start
    a.out.write_text(json.dumps(res, indent=1))
    plot(res['runs'], a.out.with_suffix('.png'))
    print(table(res))
    if res['executors']:
        print('executors (640x480 raw, 30 Hz): ' + ', '.join(
            f"{k}: idle {v['idle_cpu_pct']:.2f} % CPU, processed "
            f"{v['run_30hz_640x480']['processed_pct']:.1f} %, overhead p50 "
            f"{v['run_30hz_640x480']['ros_overhead_p50_ms']:.1f} ms"
            for k, v in res['executors'].items()))
    print(f'highest rate with < 5 % loss: {best}; wrote {a.out}')
    if not a.quick:
        from tts_perception.tools.results import command_line, record
        ex_rows = '\n'.join(
            f"| {k} | {v['idle_cpu_pct']:.2f} | {v['run_30hz_640x480']['processed_pct']:.1f} | "
            f"{v['run_30hz_640x480']['ros_overhead_p50_ms']:.1f} / "
            f"{v['run_30hz_640x480']['ros_overhead_p99_ms']:.1f} |"
            for k, v in res['executors'].items())
        body = (f"ROS 2 {distro.capitalize()} (rclpy {rclpy_version()}), backend "
                f"{res.get('backend') or 'unknown'}. perception_node with the shipped "
                f"parameters{' and ' + a.model if a.model else ''} in its own process; a "
                f"player process sends recorded frames stamped at publish time "
                f"({a.seconds:g} s per rate; "
                f"{2 * a.seconds:g} s for cameras as they come); counts from the node's "
                f"/diagnostics, lost in transport = sent - received, end-to-end = publish -> "
                f"output received, ROS overhead = end-to-end - the pipeline's own "
                f"total. Camera publisher: its reliability, and whether its process has the "
                f"shipped Fast DDS profile (no profile: a driver from the robot's own launch "
                f"file). Active node without input: {res['idle_cpu_pct']:.2f} % of a "
                f"core.\n\n{table(res)}\n\n"
                f"Executors (640x480 raw at 30 Hz):\n\n| executor | idle CPU % | processed % | "
                f"ROS overhead p50 / p99 ms |\n|---|---|---|---|\n{ex_rows}\n\n"
                f"Highest rate with < 5 % loss: "
                + ', '.join(f'{k} {v:g} Hz' for k, v in best.items()) + '.')
        command = command_line(f'make bench-node DISTRO={distro}', 'bench/bench_node.py', argv)
        path = record(f'node-{distro}' + (f'-{a.tag}' if a.tag else ''),
                      f'Perception node as a robot runs it (ROS 2 {distro.capitalize()}'
                      + (f', {a.tag}' if a.tag else '') + ')', command, body)
        print(f'updated {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
