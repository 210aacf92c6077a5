"""The documentation cannot drift from the code."""

import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.build


PAGES = [ROOT / 'README.md', ROOT / 'CONTRIBUTING.md', *sorted((ROOT / 'doc').glob('*.md'))]


def test_parameter_tables_are_generated_from_the_code():
    r = subprocess.run([sys.executable, '-m', 'tts_perception.tools.docs', '--check'],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / 'doc' / 'parameters.md').read_text()
    import importlib
    for node in ('perception_node', 'controller_node', 'sim_node', 'replay_node'):
        for p in importlib.import_module(f'tts_perception.nodes.{node}').PARAMS:
            assert f'| `{p.name}` |' in text, (node, p.name)     # every parameter documented


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub and MyST make it."""
    s = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return s.replace(' ', '-')


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_every_link_of_the_docs_leads_somewhere(page):
    text = re.sub(r'```.*?```', '', page.read_text(), flags=re.S)
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z]+://', target):
            continue
        path, _, anchor = target.partition('#')
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f'{page.name}: link to {target} leads nowhere'
        if anchor and dest.suffix == '.md':
            heads = re.findall(r'(?m)^#+ (.+)$', dest.read_text())
            assert anchor in {_slug(h) for h in heads}, f'{page.name}: no #{anchor} in {path}'


def test_the_readme_is_the_way_in_not_the_design():
    assert len((ROOT / 'README.md').read_text().splitlines()) <= 250


def test_commands_named_in_the_docs_exist():
    make = (ROOT / 'Makefile').read_text()
    for page in PAGES:
        text = page.read_text()
        for target in set(re.findall(r'`make ([\w-]+)`', text)):
            assert re.search(rf'^{target}:', make, re.M), f'{page.name}: make {target}'
        for module in set(re.findall(r'python -m (tts_perception[\w.]+)', text)):
            assert (ROOT / (module.replace('.', '/') + '.py')).exists(), (page.name, module)
        for launch in set(re.findall(r'(\w+\.launch\.py)', text)):
            assert (ROOT / 'launch' / launch).exists(), (page.name, launch)


def test_results_file_sections_name_command_date_and_machine():
    text = (ROOT / 'docs' / 'results.md').read_text()
    sections = re.findall(r'<!-- results:([\w.-]+) -->\n## .*\n\n`([^`]+)` · '
                          r'(\d{4}-\d{2}-\d{2}) · (.+)\n', text)
    assert sections, 'no results sections'
    for name, command, date, machine in sections:
        assert 'cores' in machine, (name, machine)
