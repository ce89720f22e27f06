"""The vid2vid model package: networks, the objective, the trainer, synthesis (docs/model.md).

It reads only the cached tensors and imports no pipeline stage (docs/architecture.md).
"""
