"""The research code's way of running, for baselines: a restatement of the published ALGM algorithm
(tue-mps/algm-segmenter: gather/scatter_reduce merges, a one-hot source matrix, argmax unmerge), independent
of :mod:`algm_export.merging`. The tests check the production model against it; ``algm-export bench`` times
it side by side with the production PyTorch path. Not used for deployment."""
