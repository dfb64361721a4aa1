"""A client for any server speaking ``/v1/chat/completions``: vLLM in production, llama.cpp's server
on a laptop.

Several base URLs (vLLM replicas) are balanced round robin; each has its own circuit breaker, so a
dead replica is skipped at once until its reset time, and a failed call fails over to the next one.
Connect errors, 5xx and 429 are retried with exponential backoff and jitter, a bounded number of
rounds. A read timeout is not retried (the request may still be running there, and a second one
would most likely time out too): it counts against that replica's circuit and raises.
Everything that goes wrong ends as ``ModelUnavailable`` saying which server, what, and what to do.

Schema-guided output differs by server, so ``schema_style`` picks the wire form:

- ``json_schema``: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}``
  (OpenAI and vLLM);
- ``json_object``: ``{"type": "json_object", "schema": {...}}`` (llama.cpp / llama-cpp-python
  server, which turns the schema into a grammar);
- ``auto`` (default): ask ``GET /v1/models`` once per replica; ``owned_by == "vllm"`` means
  json_schema, ``"llamacpp"``/``"me"`` (llama.cpp and llama-cpp-python) mean json_object, anything
  else starts with json_schema. If a server then rejects json_schema (HTTP 400/422, or llama-cpp-
  python's 500 naming ``response_format``), that replica switches to json_object and the call is
  repeated once; the switch is remembered.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from assistant.llm.base import Completion, Message, PerThreadUsage, usage
from assistant.llm.circuit import CircuitBreaker
from retrieval.errors import ModelUnavailable

SchemaStyle = Literal["auto", "json_schema", "json_object"]
_RETRYABLE_STATUS = {429, 500, 502, 503, 504}
_BACKOFF_BASE_S = 0.2
_BACKOFF_CAP_S = 4.0


@dataclass
class _Replica:
    base_url: str  # ends in /v1
    breaker: CircuitBreaker
    style: str | None = None  # resolved schema style
    tokenizer: str | None = None  # "llamacpp" | "vllm" | "none"
    owned_by: str | None = None

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


class _Retryable(Exception):
    """A failure worth trying again on this or another replica."""


class _Fatal(Exception):
    """A failure that is not the server's health (a 4xx): raise it, leave the circuit alone."""


class _SchemaRejected(Exception):
    """The server does not understand the json_schema response_format."""


class OpenAICompatBackend(PerThreadUsage):
    name = "openai"

    def __init__(
        self,
        base_urls: list[str],
        model: str,
        api_key: str | None = None,
        schema_style: SchemaStyle = "auto",
        connect_timeout: float = 3.0,
        read_timeout: float = 120.0,
        retries: int = 2,
        circuit_failures: int = 3,
        circuit_reset_s: float = 30.0,
        context_tokens: int = 8192,
    ) -> None:
        if not base_urls:
            raise ModelUnavailable(
                "no OpenAI-compatible base URL configured",
                where="openai_base_urls",
                fix="set CHARTDRAFT_OPENAI_BASE_URLS, e.g. '[\"http://127.0.0.1:8001/v1\"]'",
            )
        if schema_style not in ("auto", "json_schema", "json_object"):
            raise ValueError(f"schema_style must be auto, json_schema or json_object, not "
                             f"{schema_style!r}")
        self.model = model
        self.context_tokens = context_tokens
        self.schema_style = schema_style
        self.retries = max(0, retries)
        self.read_timeout = read_timeout
        self.replicas = [
            _Replica(_normalize(u), CircuitBreaker(circuit_failures, circuit_reset_s),
                     style=None if schema_style == "auto" else schema_style)
            for u in base_urls
        ]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
            headers=headers,
        )
        self._rr = 0
        self._lock = threading.Lock()

    # -- protocol ------------------------------------------------------------------------------
    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> Completion:
        t0 = time.perf_counter()

        def call(rep: _Replica) -> tuple[_Replica, dict[str, Any]]:
            body = self._body(rep, messages, schema, max_tokens, temperature, stream=False)
            resp = self._post(rep, body)
            try:
                return rep, resp.json()
            except ValueError as exc:
                raise _Retryable(f"{rep.base_url}: response is not JSON ({exc})") from exc
            finally:
                resp.close()

        rep, data = self._with_failover(call, "chat completion")
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ModelUnavailable(
                f"{rep.base_url} returned a chat completion without choices[0].message",
                where="/v1/chat/completions", fix="check that the server speaks the OpenAI API",
            ) from exc
        u = data.get("usage") or {}
        tin = int(u.get("prompt_tokens") or 0)
        tout = int(u.get("completion_tokens") or 0)
        self.last_usage = usage(tin, tout)
        return Completion(
            text=text, tokens_in=tin, tokens_out=tout, finish_reason=choice.get("finish_reason"),
            model=str(data.get("model") or self.model), backend=self.name,
            seconds=time.perf_counter() - t0,
        )

    def stream(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        """Text deltas as the server sends them. Retries and failover happen only before the
        first byte; a failure mid-stream raises ModelUnavailable (the caller keeps what it got)."""
        self.last_usage = None

        def open_stream(rep: _Replica) -> tuple[_Replica, httpx.Response]:
            body = self._body(rep, messages, schema, max_tokens, temperature, stream=True)
            return rep, self._post(rep, body, stream=True)

        rep, resp = self._with_failover(open_stream, "streaming chat completion")
        pieces: list[str] = []
        reported: dict[str, Any] | None = None
        try:
            for data in _sse_events(resp, rep.base_url, self.read_timeout):
                if data.get("error"):
                    raise ModelUnavailable(
                        f"{rep.base_url} reported an error mid-stream: {_short(data['error'])}",
                        where="/v1/chat/completions",
                    )
                if data.get("usage"):
                    reported = data["usage"]
                for choice in data.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        pieces.append(delta)
                        yield delta
        finally:
            resp.close()
        if reported:
            self.last_usage = usage(int(reported.get("prompt_tokens") or 0),
                                    int(reported.get("completion_tokens") or 0))
        else:  # llama-cpp-python's server sends no usage chunk: count with the server's tokenizer
            prompt = "\n".join(m.get("content", "") for m in messages)
            self.last_usage = usage(self.count_tokens(prompt) + 4 * len(messages),
                                    self.count_tokens("".join(pieces)), estimated=True)

    def count_tokens(self, text: str) -> int:
        """The served model's own tokenizer (llama.cpp ``/extras/tokenize``, vLLM ``/tokenize``);
        about 4 characters a token when neither answers (budgeting must not fail on a count)."""
        for rep in self.replicas:
            if rep.tokenizer == "none" or rep.breaker.state == "open":
                continue
            n = self._tokenize(rep, text)
            if n is not None:
                return n
        return max(1, len(text) // 4)

    def health(self) -> bool:
        for rep in self.replicas:
            try:
                r = self._client.get(f"{rep.base_url}/models", timeout=self._short_timeout())
                if r.status_code == 200:
                    rep.breaker.record_success()
                    return True
            except httpx.HTTPError:
                continue
        return False

    def close(self) -> None:
        self._client.close()

    # -- replicas, retries, failover -------------------------------------------------------------
    def _rotation(self) -> list[_Replica]:
        with self._lock:
            start = self._rr
            self._rr = (self._rr + 1) % len(self.replicas)
        return self.replicas[start:] + self.replicas[:start]

    def _with_failover(self, call: Any, what: str) -> Any:
        errors: list[str] = []
        for round_ in range(self.retries + 1):
            tried = False
            for rep in self._rotation():
                if not rep.breaker.allow():
                    continue
                tried = True
                try:
                    try:
                        result = call(rep)
                    except _SchemaRejected:
                        rep.style = "json_object"  # remembered for this replica
                        result = call(rep)
                except _Retryable as exc:
                    rep.breaker.record_failure()
                    errors.append(str(exc))
                    continue
                except ModelUnavailable:
                    rep.breaker.record_failure()
                    raise
                except _Fatal as exc:
                    rep.breaker.record_success()  # it answered: the server itself is fine
                    raise ModelUnavailable(
                        str(exc), where="/v1/chat/completions",
                        fix="check the model name (CHARTDRAFT_OPENAI_MODEL), API key and "
                        "request size against the server",
                    ) from None
                rep.breaker.record_success()
                return result
            if not tried:
                waits = ", ".join(f"{r.base_url} in {r.breaker.seconds_until_retry():.0f}s"
                                  for r in self.replicas)
                raise ModelUnavailable(
                    f"{what}: circuit open for every model server ({waits})",
                    where="openai_base_urls",
                    fix="start the server (see deploy/vllm/README.md) or use --backend extractive",
                ) from None
            if round_ < self.retries:
                delay = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**round_)
                time.sleep(delay * (0.5 + random.random()))  # jitter spreads retrying clients
        raise ModelUnavailable(
            f"{what} failed on every model server after {self.retries + 1} round(s): "
            + "; ".join(errors[-len(self.replicas) * 2:]),
            where="openai_base_urls",
            fix="check the servers are up (GET <base_url>/models) or use --backend extractive",
        )

    def _post(self, rep: _Replica, body: dict[str, Any], *, stream: bool = False) -> httpx.Response:
        url = f"{rep.base_url}/chat/completions"
        try:
            if stream:
                req = self._client.build_request("POST", url, json=body)
                resp = self._client.send(req, stream=True)
            else:
                resp = self._client.post(url, json=body)
        except httpx.ConnectError as exc:
            raise _Retryable(f"{rep.base_url}: cannot connect ({exc})") from exc
        except httpx.ConnectTimeout as exc:
            raise _Retryable(f"{rep.base_url}: connect timed out") from exc
        except httpx.ReadTimeout as exc:
            raise ModelUnavailable(
                f"{rep.base_url}: no answer within the read timeout ({self.read_timeout:g}s)",
                where="/v1/chat/completions",
                fix="raise CHARTDRAFT_READ_TIMEOUT_S, lower max_output_tokens, or add replicas",
            ) from exc
        except httpx.HTTPError as exc:
            raise _Retryable(f"{rep.base_url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 200:
            return resp
        detail = _error_text(resp)
        if self._schema_rejected(rep, body, resp.status_code, detail):
            raise _SchemaRejected(detail)
        if resp.status_code in _RETRYABLE_STATUS:
            raise _Retryable(f"{rep.base_url}: HTTP {resp.status_code}: {detail}")
        raise _Fatal(f"{rep.base_url} answered HTTP {resp.status_code}: {detail}")

    def _schema_rejected(self, rep: _Replica, body: dict[str, Any], status: int,
                         detail: str) -> bool:
        rf = body.get("response_format") or {}
        if self.schema_style != "auto" or rf.get("type") != "json_schema":
            return False
        return status in (400, 422) or (status == 500 and "response_format" in detail)

    # -- request bodies ---------------------------------------------------------------------------
    def _body(self, rep: _Replica, messages: list[Message], schema: dict[str, Any] | None,
              max_tokens: int, temperature: float, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if schema is not None:
            body["response_format"] = self.response_format(rep, schema)
        return body

    def response_format(self, rep: _Replica, schema: dict[str, Any]) -> dict[str, Any]:
        style = rep.style or self._detect_style(rep)
        if style == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema",
                "json_schema": {"name": "chartdraft_output", "schema": schema, "strict": True}}

    def _detect_style(self, rep: _Replica) -> str:
        """``GET /v1/models``: vLLM says ``owned_by: "vllm"``; llama.cpp servers say ``llamacpp``
        (llama.cpp) or ``me`` (llama-cpp-python)."""
        try:
            r = self._client.get(f"{rep.base_url}/models", timeout=self._short_timeout())
            models = r.json().get("data") or [] if r.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return "json_schema"  # not remembered: the call itself will fail over or retry
        owners = {str(m.get("owned_by", "")).lower() for m in models if isinstance(m, dict)}
        rep.owned_by = ",".join(sorted(owners))
        rep.style = "json_object" if owners & {"llamacpp", "me", "llama.cpp"} else "json_schema"
        return rep.style

    def detected_style(self, index: int = 0) -> str:
        rep = self.replicas[index]
        return rep.style or self._detect_style(rep)

    # -- tokenizer --------------------------------------------------------------------------------
    def _tokenize(self, rep: _Replica, text: str) -> int | None:
        kinds = [rep.tokenizer] if rep.tokenizer else ["llamacpp", "vllm"]
        for kind in kinds:
            try:
                if kind == "llamacpp":
                    r = self._client.post(f"{rep.root}/extras/tokenize", json={"input": text},
                                          timeout=self._short_timeout())
                    n = len(r.json()["tokens"]) if r.status_code == 200 else None
                else:
                    r = self._client.post(f"{rep.root}/tokenize",
                                          json={"model": self.model, "prompt": text,
                                                "add_special_tokens": False},
                                          timeout=self._short_timeout())
                    n = int(r.json()["count"]) if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                return None  # server unreachable now: don't decide its tokenizer yet
            if n is not None:
                rep.tokenizer = kind
                return n
        if not rep.tokenizer:
            rep.tokenizer = "none"
        return None

    def _short_timeout(self) -> httpx.Timeout:
        t = self._client.timeout
        return httpx.Timeout(10.0, connect=t.connect)


def _normalize(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _short(obj: Any, n: int = 300) -> str:
    s = obj if isinstance(obj, str) else json.dumps(obj)
    return s if len(s) <= n else s[:n] + "…"


def _error_text(resp: httpx.Response) -> str:
    try:
        resp.read()
        data = resp.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message", err) if isinstance(err, dict) else err
        return _short(msg)
    except (ValueError, httpx.HTTPError):
        return _short(resp.text if resp.is_stream_consumed else "")
    finally:
        resp.close()


def _sse_events(resp: httpx.Response, where: str, read_timeout: float) -> Iterator[dict[str, Any]]:
    """Parse ``data: {...}`` server-sent events until ``data: [DONE]``."""
    try:
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue  # comments (": ping"), event names, blank separators
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            try:
                yield json.loads(payload)
            except ValueError as exc:
                raise ModelUnavailable(f"{where} sent a stream event that is not JSON: "
                                       f"{_short(payload, 120)!r}") from exc
        # No [DONE]: the server failed mid-answer (llama.cpp closes the stream on a prompt that
        # overflows its context). A silent empty answer would hide that.
        raise ModelUnavailable(f"{where}: the stream ended before [DONE]; the server failed "
                               "mid-answer (see its log)", where="/v1/chat/completions")
    except httpx.ReadTimeout as exc:
        raise ModelUnavailable(
            f"{where}: stream stalled longer than the read timeout ({read_timeout:g}s)",
            where="/v1/chat/completions", fix="raise CHARTDRAFT_READ_TIMEOUT_S",
        ) from exc
    except httpx.HTTPError as exc:
        raise ModelUnavailable(f"{where}: stream broke: {type(exc).__name__}: {exc}") from exc
