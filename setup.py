"""Install script for the tts_perception ament_python package."""
from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'tts_perception'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'bench.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'),
         glob('config/*.yaml') + glob('config/*.xml')),
        (os.path.join('share', package_name, 'worlds'), glob('worlds/*.sdf')),
        (os.path.join('share', package_name, 'models', 'tts_segnet'),
         [f for f in glob('models/tts_segnet/*') if os.path.isfile(f)]),
        (os.path.join('share', package_name, 'models', 'tts_detnet'),
         [f for f in glob('models/tts_detnet/*') if os.path.isfile(f)]),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='tts_perception maintainers',
    maintainer_email='maintainers@tts-perception.dev',
    description='Test-time scaling for robot perception under latency deadlines.',
    license='Apache-2.0',
    extras_require={'test': ['pytest', 'mcap', 'mcap-ros2-support']},
    entry_points={
        'console_scripts': [
            'sim_node = tts_perception.nodes.sim_node:main',
            'perception_node = tts_perception.nodes.perception_node:main',
            'controller_node = tts_perception.nodes.controller_node:main',
            'replay_node = tts_perception.nodes.replay_node:main',
            'bringup = tts_perception.nodes.bringup:main',
            'record_bag = tts_perception.bag.record:main',
            'calibrate = tts_perception.tools.calibrate:main',
            'evaluate = tts_perception.tools.evaluate:main',
            'bundled_profile = tts_perception.tools.bundled_profile:main',
            'closed_loop = tts_perception.tools.closed_loop:main',
            'frame_player = tts_perception.tools.frame_player:main',
        ],
    },
)
