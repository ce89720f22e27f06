"""The vid2vid data pipeline (docs/architecture.md):

- :mod:`pipeline.stages`: one CLI module per Snakemake rule (``python -m pipeline.stages.<stage>``);
- :mod:`pipeline.core`: what every stage and the model share: config, CLI helpers, the stage runner,
  errors, atomic writes, images, video, progress, the cache format's header reader, the label set,
  the weights registry and the device choice;
- libraries the stages call: :mod:`pipeline.datasets` (adapters, manifest, given annotations),
  :mod:`pipeline.flow` (optical flow estimators and the OpenCV warp), :mod:`pipeline.segmentation`,
  :mod:`pipeline.face`, :mod:`pipeline.keypoints`, :mod:`pipeline.metrics`;
- :mod:`pipeline.tools`: command-line tools that are not stages (weights prefetch, GPU slots).
"""
