"""Registered map methods: importing this package registers every one of them."""

from fuselens.explain.methods import gradcam_pp, integrated_gradients, occlusion  # noqa: F401
from fuselens.explain.methods.base import REGISTRY, MapMethod, register

DEFAULT_METHOD = "gradcam_pp"

__all__ = ["DEFAULT_METHOD", "REGISTRY", "MapMethod", "register"]
