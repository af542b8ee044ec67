"""Mask -> caption engine: change facts from change masks (``facts``), LEVIR-CC-style captions (``render``),
RSICCLLM-style gates (``gates``) and the optional chat-model rewrite (``rewrite``). Callers import the modules."""
