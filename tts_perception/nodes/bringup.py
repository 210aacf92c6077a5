"""bringup: start the nodes of ``launch/sim.launch.py`` where ``ros2 launch`` is not installed.

Each node runs in its own process, as ``ros2 launch`` starts them, with its ``config/*.yaml``
as ``--params-file``, the shipped Fast DDS profile and the same remappings as
``launch/sim.launch.py``:

    sim_node        camera/image_raw, cmd_vel_nominal  ->  (planner's nominal command)
    perception_node camera/image_raw -> camera/segmentation, perception/status
    controller_node camera := camera/image_raw (follows its status and segmentation),
                    cmd_vel_in := cmd_vel_nominal -> cmd_vel -> sim_node

Ctrl-C (or SIGTERM) is passed to every node, which then shuts down cleanly (the controller
sends a zero command first); if one node exits, the others are stopped too.

    python -m tts_perception.nodes.bringup -p perception_node:deadline_ms:=30.0
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, TextIO

from tts_perception.common.paths import config_file

NODES = ('sim_node', 'perception_node', 'controller_node')
REMAP_CONTROLLER = ['-r', 'cmd_vel_in:=cmd_vel_nominal', '-p', 'camera:=camera/image_raw']


def node_args(yaml_name: str, extra: Sequence[str] = (), use_sim_time: bool = True,
              overrides: Sequence[str] = ()) -> List[str]:
    """ROS arguments for a node: its params file, remaps, use_sim_time and -p overrides."""
    args = ['--ros-args', '--params-file', str(config_file(yaml_name)), *extra]
    if use_sim_time:
        args += ['-p', 'use_sim_time:=true']
    for o in overrides:
        args += ['-p', o]
    return args


def node_commands(overrides: Dict[str, Sequence[str]]) -> Dict[str, List[str]]:
    """The command line of each node of sim.launch.py."""
    py = [sys.executable, '-m']
    return {
        'sim_node': py + ['tts_perception.nodes.sim_node'] + node_args(
            'sim.yaml', use_sim_time=False, overrides=overrides.get('sim_node', ())),
        'perception_node': py + ['tts_perception.nodes.perception_node', '--autostart'] +
        node_args('perception.yaml', overrides=overrides.get('perception_node', ())),
        'controller_node': py + ['tts_perception.nodes.controller_node'] + node_args(
            'controller.yaml', REMAP_CONTROLLER, overrides=overrides.get('controller_node', ())),
    }


class Launcher:
    """Starts processes, prefixes their output with the node name, stops them all."""

    def __init__(self, env: Optional[Dict[str, str]] = None, out: TextIO = sys.stdout,
                 quiet: bool = False):
        from tts_perception.nodes.dds import dds_env
        self.env = dds_env(dict(env if env is not None else os.environ))
        self.out, self.quiet = out, quiet
        self.procs: Dict[str, subprocess.Popen] = {}
        self.logs: Dict[str, List[str]] = {}
        self._threads: List[threading.Thread] = []

    def start(self, name: str, cmd: Sequence[str]) -> subprocess.Popen:
        p = subprocess.Popen(list(cmd), env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.procs[name] = p
        self.logs[name] = []
        t = threading.Thread(target=self._pump, args=(name, p), daemon=True)
        t.start()
        self._threads.append(t)
        return p

    def _pump(self, name: str, p: subprocess.Popen) -> None:
        for line in p.stdout:
            self.logs[name].append(line)
            del self.logs[name][:-200]
            if not self.quiet:
                self.out.write(f'[{name}] {line}')
                self.out.flush()

    def wait_for_line(self, name: str, text: str, timeout: float) -> bool:
        """Wait until node ``name`` printed a line containing ``text`` (False if it exited or
        the time ran out)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in ln for ln in self.logs.get(name, ())):
                return True
            if self.procs[name].poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def exited(self) -> Dict[str, int]:
        """Nodes that have exited, with their exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGINT) -> Dict[str, int]:
        """Signal every running node, wait, kill stragglers; returns the exit codes."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(sig)
        end = time.monotonic() + timeout
        codes = {}
        for n, p in self.procs.items():
            try:
                codes[n] = p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                codes[n] = p.wait()
        for t in self._threads:
            t.join(timeout=2.0)
        return codes


ACTIVE_LINE = 'active: listening on'
SIM_WAITS_FOR = 1          # subscriptions on the sim's camera before its clock starts: perception


def start_sim_stack(la: 'Launcher', overrides: Dict[str, Sequence[str]],
                    timeout: float = 180.0) -> None:
    """Perception first; once it listens, the controller and then the camera (sim), so no
    rendered frame is lost to a node still loading its model. RuntimeError if it fails;
    whatever way a start fails, what was started is stopped first (nothing is orphaned)."""
    # the sim's clock starts once perception's subscription matches its camera
    sim_ov = list(overrides.get('sim_node', ()))
    if not any(o.startswith('wait_for_subscribers:=') for o in sim_ov):
        sim_ov.insert(0, f'wait_for_subscribers:={SIM_WAITS_FOR}')
    cmds = node_commands({**overrides, 'sim_node': sim_ov})
    try:
        la.start('perception_node', cmds['perception_node'])
        if not la.wait_for_line('perception_node', ACTIVE_LINE, timeout):
            tail = ''.join(la.logs['perception_node'][-20:])
            raise RuntimeError(f'perception_node did not become active:\n{tail}')
        for name in ('controller_node', 'sim_node'):
            try:
                la.start(name, cmds[name])
            except OSError as exc:
                raise RuntimeError(f'{name} could not be started: {exc}') from exc
    except BaseException:
        la.stop()
        raise


def parse_overrides(specs: Sequence[str]) -> Dict[str, List[str]]:
    """``NODE:NAME:=VALUE`` strings -> {node: ['NAME:=VALUE', ...]}; ValueError if unknown."""
    ov: Dict[str, List[str]] = {n: [] for n in NODES}
    for spec in specs:
        node, _, rest = spec.partition(':')
        if node not in ov or ':=' not in rest:
            raise ValueError(f'bad override {spec!r}: expected NODE:NAME:=VALUE with NODE one '
                             f'of {NODES}')
        ov[node].append(rest)
    return ov


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run sim + perception + controller as processes until Ctrl-C or a node exits."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-p', '--param', action='append', default=[],
                    help='NODE:NAME:=VALUE override, e.g. perception_node:deadline_ms:=30.0')
    a = ap.parse_args(argv)
    from tts_perception.nodes.ros_domain import isolate_this_process
    try:
        ov = parse_overrides(a.param)
    except ValueError as exc:
        ap.error(str(exc))
    dom = isolate_this_process()
    print(f'[bringup] ROS_DOMAIN_ID={dom}, discovery on this host only', flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    la = Launcher()
    try:
        start_sim_stack(la, ov)
    except RuntimeError as exc:
        print(f'[bringup] {exc}', flush=True)
        return 1
    while not stop.is_set() and not la.exited():
        stop.wait(0.2)
    gone = la.exited()
    codes = la.stop()
    if gone:
        print(f'[bringup] {", ".join(gone)} exited ({gone}); stopped the others', flush=True)
    return 0 if not gone and all(c == 0 for c in codes.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
