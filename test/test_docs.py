"""The documentation cannot drift from the code."""

import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.build


def test_readme_parameter_tables_are_generated_from_the_code():
    r = subprocess.run([sys.executable, '-m', 'tts_perception.tools.docs', '--check'],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / 'README.md').read_text()
    from tts_perception.nodes.perception_node import PARAMS
    for p in PARAMS:                          # every parameter is documented
        assert f'| `{p.name}` |' in text, p.name


def test_readme_commands_exist():
    text = (ROOT / 'README.md').read_text()
    make = (ROOT / 'Makefile').read_text()
    for target in set(re.findall(r'`make ([\w-]+)`', text)):
        assert re.search(rf'^{target}:', make, re.M), f'make {target} is not in the Makefile'
    for module in set(re.findall(r'python -m (tts_perception[\w.]+)', text)):
        assert (ROOT / (module.replace('.', '/') + '.py')).exists(), module
    for launch in set(re.findall(r'(\w+\.launch\.py)', text)):
        assert (ROOT / 'launch' / launch).exists(), launch


def test_results_file_sections_name_command_date_and_machine():
    text = (ROOT / 'docs' / 'results.md').read_text()
    sections = re.findall(r'<!-- results:([\w.-]+) -->\n## .*\n\n`([^`]+)` · '
                          r'(\d{4}-\d{2}-\d{2}) · (.+)\n', text)
    assert sections, 'no results sections'
    for name, command, date, machine in sections:
        assert 'cores' in machine, (name, machine)
