"""Tasks: what a model's output is and how it is scored, one interface for segmentation and
detection (:class:`~tts_perception.tasks.base.Task`). The pipeline, calibration and the node
call a task; none of them branches on which one. Why: ``doc/detection.md``.
"""

from tts_perception.inference.model_desc import ModelDescription
from tts_perception.tasks.base import Task
from tts_perception.tasks.detection import DetectionTask
from tts_perception.tasks.segmentation import SegmentationTask

_TASKS = {'segmentation': SegmentationTask, 'detection': DetectionTask}


def task_for(model: ModelDescription) -> Task:
    """The task ``model.yaml`` declares (``task:``; segmentation by default)."""
    return _TASKS[model.task](model)


__all__ = ['task_for', 'Task', 'DetectionTask', 'SegmentationTask']
