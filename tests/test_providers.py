"""The remote providers (openai-compatible, ollama, vertex) through their REAL client
libraries against a loopback server that speaks each wire protocol, driven through DSPy.

Backoff and pacing run on a fake clock (virtual time), so a 429 storm with Retry-After 7 s
takes milliseconds; request timeouts use real time (fractions of a second).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import dspy
import pytest

from pipeline.providers import build_engine, limits_from
from pipeline.providers.limits import Clock
from pipeline.providers.remote import ProviderError
from tests import loopback as lb
from tests.loopback import Loopback, unused_port

KEY = "sk-test-loopback-0123456789"
VERTEX_TOKEN = "test-token"


class FakeClock(Clock):
    """Virtual time: sleep() records the wait and moves the clock on, instantly."""

    def __init__(self, start: float = 1000.0):
        self.start = self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self.sleeps.append(seconds)
                self.now += seconds

    @property
    def elapsed(self) -> float:
        return self.now - self.start


# ---------------------------------------------------------------------------------------------
# One description per provider: its wire protocol and how to build its engine
# ---------------------------------------------------------------------------------------------


@dataclass
class Kind:
    kind: str
    model: str
    chat_path: str
    ok: Callable[..., lb.Response]  # ok(text, prompt_tokens=, completion_tokens=, delay=)
    error: Callable[..., lb.Response]  # error(status, message, retry_after=, delay=)
    not_found_message: str
    not_found_fix: str  # a piece of the fix the 404 error must give
    credentials_fix: str  # a piece of the fix the 401 error must give
    auth_header: str | None  # the Authorization the server must see

    @property
    def name(self) -> str:
        return f"lb-{self.kind}"

    def engine(self, url: str, limits: dict, clock: Clock):
        if self.kind == "openai":
            return build_engine(self.name, {"kind": "openai", "model": self.model, "base_url": url + "/v1",
                                            "api_key_env": "PO_TEST_KEY", "limits": limits}, clock)
        if self.kind == "ollama":
            return build_engine(self.name, {"kind": "ollama", "model": self.model, "host": url, "limits": limits},
                                clock)
        import google.oauth2.credentials

        from pipeline.providers.vertex import VertexEngine

        return VertexEngine(self.name, self.model, project="p", location="us-central1", credentials_file=None,
                            base_url=url, limits=limits_from({"limits": limits}), clock=clock,
                            credentials=google.oauth2.credentials.Credentials(token=VERTEX_TOKEN))


def _openai_ok(text, prompt_tokens=13, completion_tokens=5, delay=0.0):
    return lb.openai_chat(text, model="m", prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                          delay=delay)


def _ollama_ok(text, prompt_tokens=13, completion_tokens=5, delay=0.0):
    return lb.ollama_chat(text, prompt_eval_count=prompt_tokens, eval_count=completion_tokens, delay=delay)


def _vertex_ok(text, prompt_tokens=13, completion_tokens=5, delay=0.0):
    return lb.vertex_generate(text, prompt_tokens=prompt_tokens, candidates_tokens=completion_tokens, delay=delay)


KINDS = {
    "openai": Kind("openai", "m", lb.OPENAI_CHAT, _openai_ok, lb.openai_error,
                   "The model `m` does not exist or you do not have access to it.",
                   "GET /v1/models", "check the key in $PO_TEST_KEY", f"Bearer {KEY}"),
    "ollama": Kind("ollama", "mistral:7b-instruct", lb.OLLAMA_CHAT, _ollama_ok, lb.ollama_error,
                   "model 'mistral:7b-instruct' not found, try pulling it first",
                   "ollama pull mistral:7b-instruct", "check the proxy or credentials", None),
    "vertex": Kind("vertex", "gemini-2.5-pro", lb.vertex_path("gemini-2.5-pro"), _vertex_ok, lb.vertex_error,
                   "Publisher Model `projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro` "
                   "was not found or your project does not have access to it.",
                   "check providers.*.model and location", "grant the credentials Vertex AI User on project p",
                   f"Bearer {VERTEX_TOKEN}"),
}


def kinds():
    """The three providers as test parameters."""
    return [pytest.param(KINDS[k], id=k) for k in KINDS]


FAST = {"max_retries": 3, "backoff_initial_s": 0.5, "timeout_s": 2}
ANSWER = "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"


@pytest.fixture
def server():
    with Loopback() as s:
        yield s


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("PO_TEST_KEY", KEY)


def lm_for(engine, kind: Kind) -> dspy.LM:
    return dspy.LM(f"{kind.kind}/{kind.model}@loopback-{id(engine)}", engine=engine, cache=False, num_retries=0)


def final_error(excinfo) -> ProviderError:
    """The ProviderError behind what DSPy raised (it wraps what an engine raises)."""
    exc = excinfo.value
    while exc is not None:
        if isinstance(exc, ProviderError):
            return exc
        exc = exc.__cause__ or exc.__context__
    raise AssertionError(f"no ProviderError behind {excinfo.value!r}")


# ---------------------------------------------------------------------------------------------
# The loopback server speaks the protocols the clients expect
# ---------------------------------------------------------------------------------------------


def test_the_loopback_answers_listings_as_the_real_clients_parse_them(server):
    import httpx
    import ollama
    import openai

    server.default(lb.OPENAI_MODELS, lb.openai_models("m", "gpt-4o-mini"))
    models = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0).models.list()
    assert [m.id for m in models.data] == ["m", "gpt-4o-mini"]

    listed = ollama.Client(host=server.url).list()
    assert [m.model for m in listed.models] == ["mistral:7b-instruct"]
    assert listed.models[0].details.parameter_size == "7.2B"
    assert httpx.get(server.url + lb.OLLAMA_VERSION).json() == {"version": "0.12.0"}

    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", lb.OPENAI_MODELS), ("GET", lb.OLLAMA_TAGS), ("GET", lb.OLLAMA_VERSION)]


def test_the_loopback_records_requests_and_answers_scripts_in_order_then_the_default(server):
    import httpx

    server.script("/x", lb.Response(201, {"n": 1}), lb.Response(202, {"n": 2}, {"x-a": "b"}))
    server.default("/x", lb.Response(299, {"n": "default"}))
    got = [httpx.post(server.url + "/x?q=1", json={"i": i}) for i in range(4)]
    assert [r.status_code for r in got] == [201, 202, 299, 299]
    assert got[1].headers["x-a"] == "b"
    assert [r.body for r in server.requests_to("/x")] == [{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}]
    assert server.requests[0].query == "q=1" and server.requests[0].headers["content-type"] == "application/json"
    assert httpx.get(server.url + "/nothing").status_code == 404


# ---------------------------------------------------------------------------------------------
# Success
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_a_call_returns_the_text_and_reports_usage_to_dspy(server, kind):
    server.script(kind.chat_path, kind.ok("Bonjour.", prompt_tokens=17, completion_tokens=3))
    engine = kind.engine(server.url, FAST, FakeClock())
    lm = lm_for(engine, kind)

    assert lm("hello") == ["Bonjour."]
    usage = lm.history[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (17, 3)
    assert engine.requests == 1 and engine.retries == 0

    (request,) = server.requests_to(kind.chat_path)
    assert request.method == "POST"
    if kind.auth_header:
        assert request.headers["authorization"] == kind.auth_header
    if kind.kind == "openai":
        assert request.body["model"] == "m"
        assert request.body["messages"] == [{"role": "user", "content": "hello"}]
    elif kind.kind == "ollama":
        assert request.body["model"] == "mistral:7b-instruct" and request.body["stream"] is False
        assert request.body["messages"] == [{"role": "user", "content": "hello"}]
    else:
        assert request.body["contents"] == [{"role": "user", "parts": [{"text": "hello"}]}]


@pytest.mark.parametrize("kind", kinds())
def test_a_predict_parses_a_chat_adapter_answer_and_sends_the_instructions_as_system(server, kind):
    server.script(kind.chat_path, kind.ok(ANSWER))
    lm = lm_for(kind.engine(server.url, FAST, FakeClock()), kind)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        prediction = dspy.Predict("question -> answer")(question="The capital of France?")
    assert prediction.answer == "Paris"

    body = server.requests_to(kind.chat_path)[0].body
    if kind.kind == "vertex":
        system = " ".join(p["text"] for p in body["systemInstruction"]["parts"])
        user = body["contents"][-1]["parts"][0]["text"]
    else:
        assert body["messages"][0]["role"] == "system"
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    assert "[[ ## answer ## ]]" in system and "The capital of France?" in user


# ---------------------------------------------------------------------------------------------
# Transient failures: retried, then recovered or given up
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_a_429_storm_is_retried_until_it_recovers(server, kind):
    server.script(kind.chat_path, *[kind.error(429, "Resource exhausted, slow down")] * 3, kind.ok("at last"))
    clock = FakeClock()
    engine = kind.engine(server.url, FAST, clock)
    lm = lm_for(engine, kind)

    assert lm("hello") == ["at last"]
    assert len(server.requests_to(kind.chat_path)) == 4
    assert engine.requests == 4 and engine.retries == 3
    assert len(clock.sleeps) == 3 and all(s > 0 for s in clock.sleeps)


@pytest.mark.parametrize("kind", kinds())
def test_429_waits_honour_retry_after(server, kind):
    # Backoff alone would wait 0.5-1.5, 1-2, 2-3 s: a Retry-After of 7 s must win each time.
    server.script(kind.chat_path, *[kind.error(429, "Resource exhausted", retry_after=7)] * 3, kind.ok("ok"))
    clock = FakeClock()
    lm = lm_for(kind.engine(server.url, FAST, clock), kind)

    assert lm("hello") == ["ok"]
    assert len(server.requests_to(kind.chat_path)) == 4
    assert clock.sleeps == [7.0, 7.0, 7.0]


@pytest.mark.parametrize("kind", kinds())
def test_a_500_is_retried_with_backoff(server, kind):
    server.script(kind.chat_path, kind.error(500, "internal error"), kind.ok("fine now"))
    clock = FakeClock()
    engine = kind.engine(server.url, FAST, clock)

    assert lm_for(engine, kind)("hello") == ["fine now"]
    assert len(server.requests_to(kind.chat_path)) == 2
    (wait,) = clock.sleeps
    assert 0.5 <= wait <= 1.5  # backoff_initial_s + up to 1 s of jitter


@pytest.mark.parametrize("kind", kinds())
def test_a_timeout_is_retried_then_given_up_with_a_final_error(server, kind):
    server.default(kind.chat_path, kind.ok("too late", delay=1.0))
    clock = FakeClock()  # backoff is virtual; the request timeout (0.3 s) is real
    engine = kind.engine(server.url, {**FAST, "timeout_s": 0.3, "max_retries": 1}, clock)

    with pytest.raises(Exception) as excinfo:
        lm_for(engine, kind)("hello")
    error = final_error(excinfo)
    assert len(server.requests_to(kind.chat_path)) == 2
    assert len(clock.sleeps) == 1
    assert "gave up after 2 attempts" in str(error) and "timed out" in str(error)
    assert kind.name in str(error) and kind.model in str(error)


@pytest.mark.parametrize("kind", kinds())
def test_a_server_that_is_down_is_retried_then_given_up(kind):
    clock = FakeClock()
    engine = kind.engine(f"http://127.0.0.1:{unused_port()}", {**FAST, "max_retries": 2}, clock)

    with pytest.raises(Exception) as excinfo:
        lm_for(engine, kind)("hello")
    error = final_error(excinfo)
    assert engine.requests == 3 and len(clock.sleeps) == 2
    assert "gave up after 3 attempts" in str(error)
    assert kind.name in str(error) and kind.model in str(error)
    assert "try later" in error.fix


# ---------------------------------------------------------------------------------------------
# Final failures: one request, an error that names the fix
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_a_missing_model_is_final_after_one_request_and_names_the_fix(server, kind):
    server.script(kind.chat_path, kind.error(404, kind.not_found_message))
    clock = FakeClock()
    engine = kind.engine(server.url, FAST, clock)

    with pytest.raises(Exception) as excinfo:
        lm_for(engine, kind)("hello")
    error = final_error(excinfo)
    assert len(server.requests_to(kind.chat_path)) == 1 and clock.sleeps == []
    assert repr(kind.model) in error.problem and "not" in error.problem
    assert kind.not_found_fix in error.fix
    assert str(error).startswith(f"{kind.name} ({kind.model}): ")


@pytest.mark.parametrize("kind", kinds())
def test_bad_credentials_are_final_after_one_request_and_say_to_check_them(server, kind):
    server.script(kind.chat_path, kind.error(401, "Request had invalid authentication credentials."))
    clock = FakeClock()
    engine = kind.engine(server.url, FAST, clock)

    with pytest.raises(Exception) as excinfo:
        lm_for(engine, kind)("hello")
    error = final_error(excinfo)
    assert len(server.requests_to(kind.chat_path)) == 1 and clock.sleeps == []
    assert "HTTP 401" in error.problem and kind.credentials_fix in error.fix
    assert kind.name in str(error) and kind.model in str(error)


@pytest.mark.parametrize("status", [401, 400, 503])
def test_a_key_echoed_back_by_the_server_never_reaches_the_error_or_the_log(server, status, caplog):
    kind = KINDS["openai"]
    server.default(kind.chat_path, kind.error(status, f"Incorrect API key provided: {KEY}. Check it."))
    engine = kind.engine(server.url, {**FAST, "max_retries": 1}, FakeClock())

    with caplog.at_level("WARNING", logger="po.providers"), pytest.raises(Exception) as excinfo:
        lm_for(engine, kind)("hello")
    error = final_error(excinfo)
    assert server.requests_to(kind.chat_path)[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(error) and KEY not in repr(excinfo.value) and "***" in str(error)
    assert KEY not in caplog.text
    if status == 503:
        assert "retry 1" in caplog.text


# ---------------------------------------------------------------------------------------------
# Pacing and concurrency
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_requests_per_minute_spaces_requests_evenly(server, kind):
    clock = FakeClock()
    lm = lm_for(kind.engine(server.url, {**FAST, "requests_per_minute": 60}, clock), kind)
    for _ in range(30):
        lm("hello")
    assert len(server.requests_to(kind.chat_path)) == 30
    assert clock.elapsed >= 29
    assert clock.sleeps == pytest.approx([1.0] * 29)


@pytest.mark.parametrize("kind", kinds())
def test_concurrency_caps_the_requests_in_flight(server, kind):
    server.default(kind.chat_path, kind.ok("slow", delay=0.2))
    lm = lm_for(kind.engine(server.url, {**FAST, "concurrency": 2}, FakeClock()), kind)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: lm("hello"), range(6)))
    assert answers == [["slow"]] * 6
    assert len(server.requests_to(kind.chat_path)) == 6
    assert server.max_in_flight == 2  # never more, and the cap was reached


def test_a_timeout_error_states_the_configured_timeout(server):
    kind = KINDS["openai"]
    server.default(kind.chat_path, kind.ok("too late", delay=1.0))
    engine = kind.engine(server.url, {**FAST, "timeout_s": 0.3, "max_retries": 0}, FakeClock())
    with pytest.raises(Exception) as excinfo:
        lm_for(engine, kind)("hello")
    assert "timed out after 0.3 s" in str(final_error(excinfo))
