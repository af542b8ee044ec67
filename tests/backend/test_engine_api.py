"""The typed engine API (issue 26 item 5): EngineInfo, its wire form (``GET /v1/info`` byte for byte as before),
the reading of untyped infos, device/dtype resolution in one place, and every engine implementing `Engine`."""

from __future__ import annotations

import json

import pytest
import requests
import torch
from ccexpert.engine_api import CaptionResult, Engine, EngineInfo, positive_or_none, resolve_device, resolve_dtype
from ccexpert.service import Settings, create_app
from ccexpert.standin import standin_engine
from ccexpert_changes.core.grid import DEFAULT_CHIP_SIZE
from service_helpers import EchoEngine, thread_server


def _old_wire(e: dict, max_batch: int, max_body_bytes: int, max_in_flight: int) -> dict:
    """`CaptionServing.info` before EngineInfo (f3113e8), kept here as the reference for the wire."""

    def positive(value):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if number > 0 else None

    return {
        "api_version": "1",
        "model_name": str(e.get("model_name", "unknown")),
        "model_version": str(e.get("model_version", "unknown")),
        "chip_size": int(e.get("chip_size", DEFAULT_CHIP_SIZE)),
        "bands": int(e.get("bands", 3)),
        "max_batch": max_batch,
        "max_body_bytes": max_body_bytes,
        "device": str(e.get("device", "cpu")),
        "dtype": str(e.get("dtype", "float32")),
        "demo": bool(e.get("demo", False)),
        "family": str(e.get("family", "ccexpert")),
        "change_expert": bool(e.get("change_expert", True)),
        "max_in_flight": max_in_flight,
        "gsd_m": positive(e.get("gsd_m")),
        # the one deliberate addition since f3113e8 (issue 27 item 7), appended so older keys keep their order
        "uses_context": bool(e.get("uses_context", False)),
    }


INFOS = [
    {  # CaptionEngine's dict at f3113e8
        "model_name": "ccexpert-demo",
        "model_version": "0.1",
        "chip_size": 384,
        "bands": 3,
        "device": "cuda:0",
        "dtype": "bfloat16",
        "max_batch": 32,
        "demo": True,
        "family": "ccexpert",
        "change_expert": True,
        "gsd_m": 0.5,
    },
    {  # GeneralVLMEngine's, with its prompt (not on the wire)
        "model_name": "qwen",
        "model_version": "unknown",
        "chip_size": 448,
        "bands": 3,
        "device": "cpu",
        "dtype": "float32",
        "max_batch": 8,
        "demo": False,
        "family": "qwen2_5_vl",
        "change_expert": False,
        "prompt": "say what changed",
        "gsd_m": None,
        "uses_context": True,
    },
    {"model_name": "echo", "model_version": 1, "chip_size": "256", "demo": 1},  # an old stub: sparse, loose types
    {"model_name": "m", "gsd_m": -3},
    {"model_name": "m", "gsd_m": "half a metre", "extra": "ignored"},
    {},
]


@pytest.mark.parametrize("info", INFOS)
def test_wire_form_equals_the_old_service_output(info):
    wire = EngineInfo.of(info).to_wire(max_batch=64, max_body_bytes=1 << 26, max_in_flight=2)
    old = _old_wire(info, 64, 1 << 26, 2)
    assert json.dumps(wire) == json.dumps(old)  # same keys, same order, same values and types


def test_v1_info_on_the_wire_is_unchanged_for_a_real_engine():
    engine = standin_engine(0.0, image_size=32, max_batch=4)
    settings = Settings()
    with thread_server(create_app(settings, engine)) as url:
        body = requests.get(url + "/v1/info", timeout=30).json()
    old = _old_wire(dict(engine.info()), settings.max_batch, settings.max_body_bytes, body["max_in_flight"])
    assert json.dumps(body) == json.dumps(old)


def test_engine_info_is_a_read_only_mapping_equal_to_the_old_dicts():
    info = EngineInfo("m", "1", chip_size=384, prompt=None)
    assert "prompt" not in info and len(info) == 12 and info["chip_size"] == 384 and info.get("nope") is None
    assert info == dict(info) and {**info, "max_in_flight": 3}["max_in_flight"] == 3
    assert EngineInfo("m", prompt="p")["prompt"] == "p"
    with pytest.raises(KeyError):
        info["prompt"]
    with pytest.raises(AttributeError):
        info.chip_size = 512  # type: ignore[misc]
    assert EngineInfo.of(info) is info


@pytest.mark.parametrize("field", ["chip_size", "bands", "max_batch"])
@pytest.mark.parametrize("bad", [0, -1, True, 3.5, "384"])
def test_engine_info_refuses_sizes_that_are_not_positive_integers(field, bad):
    with pytest.raises(ValueError, match=f"EngineInfo.{field} must be a positive integer"):
        EngineInfo("m", **{field: bad})


def test_an_unreadable_mapping_says_which_value():
    with pytest.raises(ValueError):
        EngineInfo.of({"model_name": "m", "chip_size": "big"})
    assert positive_or_none("0.3") == 0.3 and positive_or_none(0) is None and positive_or_none(None) is None


def test_every_engine_implements_the_protocol(tmp_path):
    from ccexpert.ray_serve import ReplicaEngine

    engine = standin_engine(0.0, image_size=32, max_batch=2)
    for candidate in (engine, EchoEngine()):
        assert isinstance(candidate, Engine) and isinstance(candidate.info(), EngineInfo)
    result = engine.caption([(torch.zeros(32, 32, 3, dtype=torch.uint8).numpy(),) * 2])[0]
    assert isinstance(result, CaptionResult)

    replica = ReplicaEngine(handle=None)
    wire = {**EchoEngine().info(), "unknown_key": 1}  # as the replica's deployment returns it, across processes
    replica._call = lambda make: [wire]  # type: ignore[method-assign]  # no Ray cluster: the call's answer
    assert isinstance(replica, Engine)
    assert isinstance(replica.info(), EngineInfo) and replica.info() == EchoEngine().info()


def test_device_and_dtype_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert (
        resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
        and resolve_dtype(torch.float16, None) is torch.float16
    )
    with pytest.raises(ValueError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", torch.device("cpu"))
