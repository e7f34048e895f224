"""Segmenter model: timm ViT encoder with ALGM merges, linear and mask-transformer decoders."""
