"""Patch-colour models shipped with tinct (files beside this module, each with a model card)."""

from tinct.engine.modelfile import ShippedModel

__all__ = ["PATCH_MODEL"]

#: What :func:`tinct.api.predict_patch` and the demo use without ``model=``.
PATCH_MODEL = ShippedModel(
    name="patch_cross_attention_synth",
    file="patch_cross_attention_synth.pt",
    description="Patch colour: small CNN with cross-attention metadata fusion and 16 px of background, the "
    "validation-best variant of tinct study patch, trained on 3000 synthetic skin-patch photos of three "
    "cameras (tinct data synth-patches)",
    package="tinct.patch",
)
