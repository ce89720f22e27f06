"""The vid2vid data pipeline: one CLI module per stage (``python -m pipeline.<stage>``), the
helpers they share (config, cli, stage runner, errors, atomic writes, images, video, progress)
and the subpackages datasets/, segmentation/, face/, keypoints/, metrics/ (docs/architecture.md,
docs/stages.md).
"""
