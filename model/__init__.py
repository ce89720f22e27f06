"""The vid2vid model package: networks, losses, trainer, inference.

It reads only the cached tensors (DESIGN.md) and imports no pipeline stage code. The model and
trainer arrive with their own issue; the package exists so the layout is in place.
"""
