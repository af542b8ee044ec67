"""Optional rewrite of template captions through any OpenAI-compatible chat endpoint.

This is the CC-Foundation / RSICI step (a strong LLM writes varied captions from the change prior), kept
optional: it is off by default, nothing in the project needs it, and every rewritten caption must pass the
same quality gates as the templates. A rejected batch is retried at most twice with a changed prompt, as in
RSICCLLM; whatever is still missing is filled with the template captions, so a rewrite never loses a pair.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import requests
from ccexpert.nochange import normalise_caption

from .facts import ChangeFacts
from .gates import check_caption

SYSTEM_PROMPT = (
    "You write change captions for pairs of aerial images in the style of the LEVIR-CC dataset: one short "
    "lower-case sentence per line, no final period, describing only what changed (objects built, demolished or "
    "replaced, how many, and where in the scene: top left, top, top right, left, center, right, bottom left, "
    "bottom, bottom right). Never mention how the change was annotated."
)
EXAMPLES = (
    "two houses are built in the upper left corner of the scene\n"
    "some trees are removed and a road appears at the top\n"
    "a parking lot replaces the buildings on the right side"
)
RETRY_HINTS = (
    "",
    "Use only the objects, numbers, places and verbs given in the facts.",
    "Keep each caption under 20 words, name the main object first, and use the exact number given.",
)


@dataclass(frozen=True)
class RewriteConfig:
    """Where and how to rewrite. ``url`` is the API base (``.../v1``); the key is read from ``api_key_env``."""

    url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    temperature: float = 0.7
    max_retries: int = 2


def _facts_text(facts: ChangeFacts) -> str:
    lines = []
    for fact in facts.facts:
        place = fact.location or "spread over the scene"
        was = f", replacing {fact.replaced}" if fact.replaced and fact.kind != "disappear" else ""
        lines.append(f"- {fact.count} x {fact.cls}, {fact.kind}, {place}, {fact.size}{was}")
    return "\n".join(lines)


def _ask(config: RewriteConfig, facts: ChangeFacts, n: int, hint: str, session: requests.Session) -> list[str]:
    user = (
        f"Changes:\n{_facts_text(facts)}\n\nExamples of the style:\n{EXAMPLES}\n\n"
        f"Write {n} different captions, one per line. {hint}"
    ).strip()
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(config.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    response = session.post(
        config.url.rstrip("/") + "/chat/completions",
        json={
            "model": config.model,
            "temperature": config.temperature,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
        },
        headers=headers,
        timeout=config.timeout_s,
    )
    if response.status_code != 200:
        raise RuntimeError(f"rewrite endpoint {config.url} answered HTTP {response.status_code}: {response.text[:200]}")
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise RuntimeError(f"rewrite endpoint {config.url} returned no chat completion: {response.text[:200]}") from exc
    lines = (line.strip().lstrip("-*0123456789.) ").strip() for line in content.splitlines())
    return [normalise_caption(line) for line in lines if line]


def rewrite_captions(
    facts: ChangeFacts, captions: list[str], config: RewriteConfig, session: requests.Session | None = None
) -> list[str]:
    """Rewritten captions that pass the gates, topped up with ``captions`` (the templates) to the same count.

    No-change pairs keep their captions: LEVIR-CC's five no-change sentences are the references.
    """
    if not facts.changed:
        return list(captions)
    session = session or requests.Session()
    kept: list[str] = []
    for attempt in range(config.max_retries + 1):
        for caption in _ask(config, facts, len(captions) - len(kept), RETRY_HINTS[min(attempt, 2)], session):
            if caption not in kept and check_caption(caption, facts).passed:
                kept.append(caption)
        if len(kept) >= len(captions):
            return kept[: len(captions)]
    return kept + [c for c in captions if c not in kept][: len(captions) - len(kept)]
