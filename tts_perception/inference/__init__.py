"""Running a segmentation model: its description (model.yaml), the runner, the backends."""
