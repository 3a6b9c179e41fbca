"""Modality encoders: each maps its input to ``(B, tokens_per_modality, d_model)`` tokens."""
