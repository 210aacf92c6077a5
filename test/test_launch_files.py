"""Launch files are parsed (not executed: no launch_ros here) and checked against the code."""

import ast
import re

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.build

LAUNCH = sorted((ROOT / 'launch').glob('*.launch.py'))
NODE_MODULES = {'sim_node': 'sim_node', 'perception_node': 'perception_node',
                'controller_node': 'controller_node'}


def _entry_points():
    txt = (ROOT / 'setup.py').read_text()
    return dict(re.findall(r"'(\w+) = ([\w.]+):main'", txt))


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


def _kw(call, key):
    return next((k.value for k in call.keywords if k.arg == key), None)


def test_all_four_launch_files_exist():
    names = {p.name for p in LAUNCH}
    assert {'perception.launch.py', 'replay.launch.py', 'sim.launch.py',
            'gazebo.launch.py'} <= names


@pytest.mark.parametrize('path', LAUNCH, ids=lambda p: p.name)
def test_launch_file_matches_code(path):
    tree = ast.parse(path.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description'
               for n in tree.body)
    eps = _entry_points()
    for call in _calls(tree, 'Node') + _calls(tree, 'LifecycleNode'):
        pkg = _kw(call, 'package').value
        exe = _kw(call, 'executable').value
        if pkg != 'tts_perception':
            continue
        assert exe in eps, f'{path.name}: executable {exe} not in setup.py console_scripts'
        module = ROOT / (eps[exe].replace('.', '/') + '.py')
        assert module.exists()
        src = module.read_text()
        remaps = _kw(call, 'remappings')
        for pair in (remaps.elts if remaps is not None else []):
            first = pair.elts[0]
            if isinstance(first, ast.Constant):
                assert f"'{first.value}'" in src, f'{exe} has no topic {first.value}'
    for c in _calls(tree, 'DeclareLaunchArgument'):
        assert _kw(c, 'description') is not None, f'{path.name}: argument without description'
    used = {c.args[0].value for c in _calls(tree, 'LaunchConfiguration')}
    names = {c.args[0].value for c in _calls(tree, 'DeclareLaunchArgument')}
    assert used <= names, f'{path.name}: undeclared launch arguments {used - names}'
    for yaml_name in re.findall(r"'(\w+\.yaml)'", path.read_text()):
        assert (ROOT / 'config' / yaml_name).exists(), yaml_name


@pytest.mark.parametrize('yaml_name,module', [('sim.yaml', 'sim_node'),
                                              ('perception.yaml', 'perception_node'),
                                              ('controller.yaml', 'controller_node')])
def test_config_yaml_holds_exactly_the_parameter_table_defaults(yaml_name, module):
    import importlib
    mod = importlib.import_module(f'tts_perception.nodes.{module}')
    declared = {p.name: p.default for p in mod.PARAMS}
    data = yaml.safe_load((ROOT / 'config' / yaml_name).read_text())
    params = data['/**']['ros__parameters']
    assert set(params) == set(declared), (set(params) ^ set(declared))
    wrong = {k: (v, declared[k]) for k, v in params.items() if v != declared[k]}
    assert not wrong, f'{yaml_name} differs from the defaults in the code: {wrong}'


@pytest.mark.parametrize('yaml_name', ['pipeline.yaml', 'pipeline_cuda.yaml'])
def test_pipeline_yaml_keys_are_the_config_and_the_node_parameters(yaml_name):
    from tts_perception.adaptive.pipeline import PipelineConfig
    from tts_perception.nodes.perception_node import PIPELINE_PARAMS
    pipe = yaml.safe_load((ROOT / 'config' / yaml_name).read_text())
    cfg = PipelineConfig.from_dict(pipe)           # every key known, every value in range
    assert set(pipe) == set(cfg.to_dict()) == {p.name for p in PIPELINE_PARAMS}
    if yaml_name == 'pipeline.yaml':               # the documented defaults
        assert pipe == PipelineConfig().to_dict()


@pytest.mark.parametrize('yaml_name', ['pipeline_detector.yaml', 'pipeline_detector_cuda.yaml'])
def test_detector_pipeline_yaml_is_a_valid_subset_naming_the_detector(yaml_name):
    from tts_perception.adaptive.pipeline import PipelineConfig
    pipe = yaml.safe_load((ROOT / 'config' / yaml_name).read_text())
    cfg = PipelineConfig.from_dict(pipe)           # every key known, every value in range
    assert cfg.model_path == 'models/tts_detnet' and (ROOT / cfg.model_path).is_dir()


def test_pipeline_config_refuses_unknown_keys_and_bad_values():
    from tts_perception.adaptive.pipeline import PipelineConfig
    with pytest.raises(ValueError, match='unknown pipeline config keys'):
        PipelineConfig.from_dict({'deadline': 3})
    with pytest.raises(ValueError, match='latency_quantile must be one of'):
        PipelineConfig.from_dict({'latency_quantile': 'p95'})
    with pytest.raises(ValueError, match='deadline_ms must be in'):
        PipelineConfig.from_dict({'deadline_ms': float('inf')})
    with pytest.raises(ValueError, match='bad resolution'):
        PipelineConfig.from_dict({'resolutions': ['640*480']})
