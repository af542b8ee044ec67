"""RSICCLLM-style gates: every template caption passes; wrong object/verb/direction/quantity, leakage and bad
lengths are rejected with a reason."""

from __future__ import annotations

import itertools

import pytest
from ccexpert.nochange import NO_CHANGE_CAPTIONS
from ccexpert_training.maskcaption.facts import CHANGE_CLASSES, GRID_NAMES, ChangeFact, ChangeFacts
from ccexpert_training.maskcaption.gates import check_caption, passes
from ccexpert_training.maskcaption.render import render_captions

LOCATIONS = [name for row in GRID_NAMES for name in row] + [""]
HOUSES = ChangeFacts((ChangeFact("building", "appear", 2, "top left", "small", 0.01, "bareland"),), 0.01)


def test_every_template_caption_passes():
    for cls, kind, count, location, replaced in itertools.product(
        CHANGE_CLASSES,
        ("appear", "disappear", "replace"),
        (1, 2, 3, 6, 10),
        LOCATIONS,
        (None, "bareland", "grass", "forest", "building", "road"),
    ):
        facts = ChangeFacts((ChangeFact(cls, kind, count, location, "small", 0.01, replaced),), 0.01)
        for caption in render_captions(facts):
            result = check_caption(caption, facts)
            assert result.passed, (caption, result.reasons)


def test_two_fact_captions_pass():
    facts = ChangeFacts(
        (
            ChangeFact("forest", "disappear", 1, "top", "large", 0.2, "bareland"),
            ChangeFact("building", "appear", 3, "bottom left", "small", 0.01, "bareland"),
        ),
        0.21,
    )
    assert all(passes(c, facts) for c in render_captions(facts))


def test_no_change_captions():
    assert all(passes(c, ChangeFacts()) for c in NO_CHANGE_CAPTIONS)
    assert "describes a change" in check_caption("two houses are built", ChangeFacts()).reasons[0]
    assert "says nothing changed" in check_caption("there is no difference", HOUSES).reasons[0]


@pytest.mark.parametrize(
    ("caption", "reason"),
    [
        ("two roads are built in the upper left corner", "object: the main change (building) is not named"),
        ("two houses and a lake are built in the upper left corner", "object: names water"),
        ("two houses are demolished in the upper left corner", "verb: the main change (appear) is not expressed"),
        ("two houses are built in the lower left corner", "direction: bottom"),
        ("three houses are built in the upper left corner", "quantity: [3]"),
        ("two houses are built in the upper left corner of the mask", "leakage words: mask"),
        ("two changed pixels are built at the top left", "leakage words: pixels"),
        ("houses built", "length: 2 words"),
        (" ".join(["two houses are built"] * 11), "length: 44 words"),
    ],
)
def test_rejections_name_the_gate(caption, reason):
    result = check_caption(caption, HOUSES)
    assert not result.passed
    assert any(r.startswith(reason) for r in result.reasons), result.reasons


def test_disappear_words_need_a_removal():
    assert "verb: says something disappeared" in " ".join(
        check_caption("two houses are built and some trees are removed at the top left", HOUSES).reasons
    )


def test_free_phrasing_that_agrees_passes():
    assert passes("Two new villas have been erected at the top left corner.", HOUSES)
    assert passes("two houses show up on the bareland", HOUSES)


class _FakeChat:
    """A local OpenAI-compatible endpoint that answers from a list of canned completions."""

    def __init__(self, answers: list[str]):
        import http.server
        import json
        import threading

        self.answers, self.requests = list(answers), []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, self.headers.get("Authorization"), body))
                content = outer.answers.pop(0) if outer.answers else ""
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_rewrite_keeps_only_gated_captions_and_retries(monkeypatch):
    from ccexpert_training.maskcaption.rewrite import RewriteConfig, rewrite_captions

    fake = _FakeChat(
        [
            "1. Two villas have been erected in the top left corner.\n2. two houses appear in the mask\n"
            "3. three houses are built at the top left",
            "- two new houses show up at the top left corner of the scene",
        ]
    )
    monkeypatch.setenv("FAKE_KEY", "secret")
    templates = render_captions(HOUSES)
    out = rewrite_captions(
        HOUSES, templates, RewriteConfig(url=fake.url, model="m", api_key_env="FAKE_KEY", max_retries=1)
    )
    fake.server.shutdown()
    assert out[:2] == [
        "two villas have been erected in the top left corner",
        "two new houses show up at the top left corner of the scene",
    ]
    assert out[2:] == templates[:3]  # topped up with templates: nothing is lost
    assert all(passes(c, HOUSES) for c in out)
    assert len(fake.requests) == 2  # one retry with a changed prompt
    path, auth, body = fake.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer secret" and body["model"] == "m"
    assert fake.requests[1][2]["messages"][1]["content"] != body["messages"][1]["content"]


def test_rewrite_leaves_no_change_pairs_alone():
    from ccexpert_training.maskcaption.rewrite import RewriteConfig, rewrite_captions

    captions = list(NO_CHANGE_CAPTIONS)
    assert rewrite_captions(ChangeFacts(), captions, RewriteConfig(url="http://127.0.0.1:9", model="m")) == captions


def test_rewrite_endpoint_errors_are_named():
    import http.server
    import threading

    from ccexpert_training.maskcaption.rewrite import RewriteConfig, rewrite_captions

    class Broken(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # http.server's name
            self.send_response(503)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"busy")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    with pytest.raises(RuntimeError, match=r"answered HTTP 503: busy"):
        rewrite_captions(HOUSES, render_captions(HOUSES), RewriteConfig(url=url, model="m"))
    server.shutdown()
