"""The vid2vid data pipeline: one module per stage, each runnable as ``python -m pipeline.<stage>``.

Stages so far: ``synthcity`` (render the demo dataset), ``frames`` (extract frames + manifest),
``manifest`` (merge per-shard manifests). Shared pieces: ``config`` (load + validate),
``datasets`` (adapters), ``video`` (ffmpeg), ``images``, ``atomic`` (complete-or-absent outputs).
"""
