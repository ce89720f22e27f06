"""Semantic segmenters for the labels stage (paper section 4: DeepLabV3 labels for every frame).

- :mod:`.mmseg_deeplabv3`: mmsegmentation's DeepLabV3 (R50/R101-D8) in plain PyTorch, for the
  published Cityscapes checkpoints (mode ``pretrained``);
- :mod:`.trainable`: torchvision's DeepLabV3 trained on the dataset's annotated frames (mode
  ``train``, what the paper did), and the checkpoint it writes;
- :mod:`.predict`: batched inference over frames, trainIds -> Cityscapes labelIds.
"""
