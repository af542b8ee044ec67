"""General two-image VLMs beside CCExpert: LLaVA-OneVision (HF format) and Qwen2.5-VL, tiny random checkpoints
built here, through the engine (batched, same result type) and the HTTP service unchanged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import requests
from ccexpert.checkpoints import CheckpointError
from ccexpert.engine import CaptionEngine
from ccexpert.engine_api import CaptionResult
from ccexpert.general_vlm import (
    DEFAULT_PROMPT,
    MAX_PROMPT_CHARS,
    GeneralVLMEngine,
    check_prompt,
    llava_onevision_tokens,
)
from ccexpert.service import Settings, create_app
from general_vlm_helpers import tiny_llava_onevision, tiny_qwen2_5_vl
from service_helpers import b64, png_bytes, thread_server

BUILDERS = {"llava_onevision": tiny_llava_onevision, "qwen2_5_vl": tiny_qwen2_5_vl}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request, tmp_path_factory):
    return request.param, BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def engine(checkpoint):
    return CaptionEngine.from_pretrained(checkpoint[1], device="cpu")


def _pairs(count: int, size: int = 384) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    return [
        (rng.integers(0, 256, (size, size, 3), dtype=np.uint8), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        for _ in range(count)
    ]


def test_llava_onevision_anyres_token_count():
    assert llava_onevision_tokens((384, 384), [[384, 384]], 384, 27) == 1485  # base 729 + crop 729 + 27 newlines
    pinpoints = [[384 * a, 384 * b] for a in range(1, 7) for b in range(1, 7)]  # an OV checkpoint's grid
    assert llava_onevision_tokens((384, 384), pinpoints, 384, 27) == 1485  # a square chip picks the 384 pinpoint
    assert llava_onevision_tokens((384, 768), pinpoints, 384, 27) == 729 + 27 * 54 + 27  # 1 x 2 crops


def test_the_family_loads_with_its_own_processor_and_says_it_is_not_a_change_expert(checkpoint, engine):
    family, _ = checkpoint
    assert isinstance(engine, GeneralVLMEngine)
    info = engine.info()
    assert info["family"] == family and info["change_expert"] is False and info["demo"] is False
    assert info["chip_size"] == 384 and info["prompt"] == DEFAULT_PROMPT


def test_captions_batched_equal_one_by_one(engine):
    pairs = _pairs(3)
    batched = engine.caption(pairs, max_new_tokens=6)
    alone = [engine.caption([pair], max_new_tokens=6)[0] for pair in pairs]
    assert all(isinstance(r, CaptionResult) and 0.0 <= r.confidence <= 1.0 and 1 <= r.num_tokens <= 6 for r in batched)
    assert [r.caption for r in batched] == [r.caption for r in alone]
    assert [r.confidence for r in batched] == pytest.approx([r.confidence for r in alone], rel=1e-3)


def test_prompt_is_overridable_within_limits(engine):
    pair = _pairs(1)
    other = engine.caption(pair, max_new_tokens=4, prompt="List what appeared.")
    assert len(other) == 1
    assert check_prompt(None) == DEFAULT_PROMPT and check_prompt("  say it  ") == "say it"
    with pytest.raises(ValueError, match="over the limit"):
        engine.caption(pair, prompt="x" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(ValueError, match="non-empty"):
        check_prompt("   ")


def test_bad_images_are_refused_naming_them(engine):
    with pytest.raises(ValueError, match="pair 0, after image: expected an HxWx3 uint8 array"):
        engine.caption([(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))])


def test_service_serves_the_family_unchanged(engine):
    before, after = _pairs(1)[0]
    with thread_server(create_app(Settings(), engine)) as url:
        reply = requests.post(
            url + "/v1/captions",
            json={"pairs": [{"id": "p1", "before": b64(png_bytes(before)), "after": b64(png_bytes(after))}]},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        result = reply.json()["results"][0]
        assert result["id"] == "p1" and result["caption"] == engine.caption([(before, after)])[0].caption
        info = requests.get(url + "/v1/info").json()
        assert info["chip_size"] == 384 and info["family"] == engine.family and info["change_expert"] is False


def test_refusals(tmp_path, checkpoint):
    _, folder = checkpoint
    pickled = tmp_path / "pickled"
    shutil.copytree(folder, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="only pickled weights"):
        CaptionEngine.from_pretrained(pickled, device="cpu")
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "blip"}))
    with pytest.raises(CheckpointError, match="supported: ccexpert, llava_onevision"):
        CaptionEngine.from_pretrained(other, device="cpu")
    no_template = tmp_path / "no_template"
    shutil.copytree(folder, no_template)
    (no_template / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="no chat template"):
        CaptionEngine.from_pretrained(no_template, device="cpu")
