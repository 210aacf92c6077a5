# tts_perception: the README's two commands are `make demo` and `make test`.
# DISTRO selects the ROS 2 distribution (jazzy, the LTS, by default; or kilted), each with a
# pinned venv of its own (.venv-jazzy, .venv-kilted) made by scripts/setup_env.sh.
SHELL := /bin/bash
DISTRO ?= jazzy
# make demo TASK=detection: the bundled detector's boxes drive the controller
TASK ?= segmentation
ENV = export TTS_ROS_DISTRO=$(DISTRO) && source scripts/env.sh &&
PYTEST = python -m pytest -q -p no:cacheprovider --timeout=600 test

.PHONY: setup setup-jazzy setup-kilted demo test test-jazzy test-kilted lint bench bench-node bench-detection \
	soak train train-detector detector-headroom profile profile-detector calibrate evaluate eval-sim eval-sim-detector eval-sim-courses third-party closed-loop sample-bag clean

setup:
	@bash scripts/setup_env.sh $(DISTRO)

setup-jazzy:
	@bash scripts/setup_env.sh jazzy

setup-kilted:
	@bash scripts/setup_env.sh kilted

demo: setup
	$(ENV) python -m tts_perception.tools.demo --task $(TASK)

# the whole suite on Jazzy, then on Kilted
test: test-jazzy test-kilted

test-jazzy: setup-jazzy
	export TTS_ROS_DISTRO=jazzy && source scripts/env.sh && $(PYTEST)

test-kilted: setup-kilted
	export TTS_ROS_DISTRO=kilted && source scripts/env.sh && $(PYTEST)

lint: setup
	$(ENV) flake8 tts_perception test bench launch

bench: setup
	$(ENV) python bench/bench_core.py

bench-node: setup
	$(ENV) python bench/bench_node.py

bench-detection: setup
	$(ENV) python bench/bench_detection.py

soak: setup
	$(ENV) python -m tts_perception.tools.soak

train: setup
	$(ENV) python -m tts_perception.model.train

train-detector: setup
	$(ENV) python -m tts_perception.model.train_detector

detector-headroom: setup
	$(ENV) python bench/detector_headroom.py

profile: setup
	$(ENV) python -m tts_perception.tools.bundled_profile

profile-detector: setup
	$(ENV) python -m tts_perception.tools.bundled_profile --config config/pipeline_detector.yaml

calibrate: setup
	$(ENV) python -m tts_perception.calibrate $(BAG) --model "$(MODEL)" $(ARGS)

evaluate: setup
	$(ENV) python -m tts_perception.evaluate "$(BAG)" --model "$(MODEL)" $(ARGS)

closed-loop: setup
	$(ENV) python -m tts_perception.closed_loop

eval-sim: setup
	$(ENV) python bench/evaluate_runs.py sim

eval-sim-detector: setup
	$(ENV) python bench/evaluate_runs.py sim-detector

eval-sim-courses: setup
	$(ENV) python bench/evaluate_runs.py sim-courses

third-party: setup
	$(ENV) python bench/evaluate_runs.py third-party

sample-bag: setup
	$(ENV) python -m tts_perception.bag.record sample

clean:
	rm -rf build install log demo_out eval_out closed_loop_out data .pytest_cache
