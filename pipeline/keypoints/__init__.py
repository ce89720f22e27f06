"""Pose inputs for the pose-to-body (dance) task (paper section 4: "we use OpenPose and DensePose
to estimate poses"): keypoints from a backend, rendered into OpenPose-style pose maps."""
