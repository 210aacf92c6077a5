"""The node bench (``make bench-node``) CI-sized: the bundled detector's node in its own
process, a camera player at 10 Hz; every frame the player sent is accounted for in its row
(processed, dropped, held for the next, stale or lost in transport), and the table shows it."""

import json
import subprocess
import sys

from conftest import ROOT


def test_the_node_bench_accounts_for_every_frame(tmp_path, ros_env, sample_bag):
    out = tmp_path / 'node.json'
    r = subprocess.run([sys.executable, str(ROOT / 'bench' / 'bench_node.py'), '--quick',
                        '--model', 'models/tts_detnet', '--bag', str(sample_bag),
                        '--out', str(out)], cwd=ROOT, env=ros_env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    [row] = res['runs']
    assert row['sent'] == 50 and row['rate_hz'] == 10.0 and 'onnxruntime' in res['backend']
    # the node's own counters: every frame it received processed, dropped, held or stale;
    # the rest lost in transport; every processed frame's output reached the bench
    gone = row['node_processed'] + row['dropped_newest_wins'] + row['held_for_next'] + \
        row['stale'] + row['bad']
    assert row['sent'] - row['lost_in_transport'] == row['received'] == gone, row
    assert row['processed'] == row['node_processed'] >= 45, row     # 10 Hz: well within
    assert 'held for the next' in r.stdout
