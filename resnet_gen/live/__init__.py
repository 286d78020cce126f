"""Live back end: plans to torch modules. Importing this imports torch."""

from .build import ResNet, build

__all__ = ["ResNet", "build"]
