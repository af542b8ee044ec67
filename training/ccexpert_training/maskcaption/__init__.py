"""Mask -> caption engine: change facts from change masks, LEVIR-CC-style captions, RSICCLLM-style gates."""

from .facts import CLASS_IDS, CLASS_NAMES, ChangeFact, ChangeFacts, extract_facts
from .gates import GateResult, check_caption, passes
from .render import render_captions, render_fact

__all__ = [
    "CLASS_IDS",
    "CLASS_NAMES",
    "ChangeFact",
    "ChangeFacts",
    "GateResult",
    "check_caption",
    "extract_facts",
    "passes",
    "render_captions",
    "render_fact",
]
