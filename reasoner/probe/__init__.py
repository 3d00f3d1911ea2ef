"""Difficulty probes on prompt hidden states (Zhu et al. 2025, arXiv 2509.12886): ``fit`` (pure math) and
``cli`` (``reasoner probe fit``)."""
