"""Optical flow for the flow stage and the temporal metrics (paper section 4: FlowNet2 flow):
``models`` (torchvision RAFT and ptlflow's models, FlowNet2 among them, batched on the GPU),
``dis`` (OpenCV DIS, no weights) with the forward-backward confidence check, and ``warp``
(OpenCV backward warping of frames, for the warping error; the model's torch warp is
model/flow_ops.py).
"""

# the flow modes of ptlflow's models: ptlflow:<model name> (the flow stage registers the family)
PTLFLOW_PREFIX = "ptlflow:"
