"""What the stages and the model share, written once: config loading and validation (config.py,
runs.py) and its typed, frozen sections (settings.py), CLI helpers (cli.py), the per-sequence stage runner (stage.py), errors, atomic writes,
images, video, arrays, progress logs, code versions, and the contracts ``model/`` reads too: the
cache format (cache_format.py), the label set (cityscapes_labels.py), the weights registry
(weights.py) and the device and precision choice (devices.py). Nothing here imports a stage.
"""
