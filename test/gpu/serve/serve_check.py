#!/usr/bin/env python3
"""Issue 6's acceptance check of a running `dsv3-run --serve` (docs/serving.md).

Given the port of a server on loopback (a plan, a checkpoint and the real
tokenizer behind it), it runs, with the Python standard library only:
  a. ALONE: 32 varied prompts one at a time, greedy, max_tokens 48, top-3
     log-probabilities, completions and chat mixed (not streamed);
  b. CONCURRENT: the same 32 at once as streaming clients (SSE): every stream
     ends with a finish_reason, a usage chunk and [DONE]; usage counts agree
     with the tokens received and the prompt's length alone;
  c. CLOSENESS: each concurrent output against its alone output: identical,
     or at the first divergence each run's token is in the other's top 3
     (every divergence is reported; one outside the top 3 fails);
  d. KV pages in use back to 0 (from /metrics) once all have finished;
  e. SOAK (--soak-seconds, default $DSV3_SOAK_SECONDS or 180): ~32 client
     threads with random requests (lengths, sampling settings, stream or
     not, log-probabilities), some that disconnect after a few events, some
     malformed or oversized that must get 4xx; then /health answers, every
     request that did not disconnect ended properly, KV pages are back to 0,
     and no 5xx came back but 503 with Retry-After.
Prints a summary table last; exit status 1 if any check failed.
"""

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import sys
import threading
import time

TOP = 3  # the closeness check's top-N


# ---------------------------------------------------------------- HTTP ----

class Server:
    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout

    def connect(self, timeout=None):
        return http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout or self.timeout)

    def request(self, method, path, body=None, headers=None, timeout=None):
        """(status, headers dict, raw bytes). Raises on a broken connection."""
        conn = self.connect(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def post(self, path, body, timeout=None):
        status, headers, data = self.request("POST", path, body, timeout=timeout)
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        return status, headers, parsed, data

    def stream(self, path, body, timeout=None, disconnect_after=None):
        """Streams an SSE reply. Returns a dict: status, headers, events
        (parsed JSON of each data line), done ([DONE] seen), first_token_s
        (seconds to the first event with text or tokens), disconnected."""
        out = {"status": None, "headers": {}, "events": [], "done": False,
               "first_token_s": None, "disconnected": False, "body": b""}
        conn = self.connect(timeout)
        start = time.monotonic()
        try:
            conn.request("POST", path, body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            out["status"] = resp.status
            out["headers"] = {k.lower(): v for k, v in resp.getheaders()}
            if resp.status != 200:
                out["body"] = resp.read()
                return out
            while True:
                if disconnect_after is not None and len(out["events"]) >= disconnect_after:
                    # Go away mid-stream, without reading the rest.
                    out["disconnected"] = True
                    try:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return out
                line = resp.readline()
                if not line:
                    return out  # the server closed the stream
                line = line.strip()
                if not line.startswith(b"data: "):
                    continue
                payload = line[len(b"data: "):]
                if payload == b"[DONE]":
                    out["done"] = True
                    resp.read()
                    return out
                event = json.loads(payload)
                if out["first_token_s"] is None and event.get("choices"):
                    out["first_token_s"] = time.monotonic() - start
                out["events"].append(event)
        finally:
            conn.close()


def metrics(server):
    status, _, data = server.request("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    values = {}
    for line in data.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    return values


def wait_idle(server, seconds):
    """Polls /metrics until no page is in use and nothing runs or waits.
    Returns (ok, last metrics, seconds waited)."""
    start = time.monotonic()
    while True:
        m = metrics(server)
        idle = (m.get("dsv3_kv_pages_in_use") == 0 and
                m.get("dsv3_running_requests") == 0 and
                m.get("dsv3_waiting_requests") == 0)
        if idle or time.monotonic() - start > seconds:
            return idle, m, time.monotonic() - start
        time.sleep(0.1)


# ------------------------------------------------------------- prompts ----

SHORT_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Explain why the sky is blue in two sentences.",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "人工智能正在改变我们的生活方式，",
    "Москва — столица России, а Санкт-Петербург",
    "東京の天気は今日とても",
    "مرحبا بكم في عالم البرمجة",
    "Once upon a time, in a land far away, there lived",
    "SELECT name, COUNT(*) FROM users GROUP BY name HAVING",
    "3.14159265358979323846264338327950288419716939937510",
    "🙂🚀 emoji and text mixed together 🎉 with more",
    "#include <stdio.h>\nint main(void) {\n  printf(",
    '{"name": "dsv3", "layers": 61, "experts": [',
    "Translate to French: I would like a cup of coffee, please.",
    "   leading spaces\n\n\ttabs and\n\nblank lines   ",
    "Q: What is 17 times 23?\nA:",
]

CHAT_TURNS = [
    [{"role": "user", "content": "Hello! Who are you?"}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "Name three prime numbers."}],
    [{"role": "user", "content": "写一首关于秋天的短诗。"}],
    [{"role": "user", "content": "What is MLA attention?"},
     {"role": "assistant", "content": "Multi-head latent attention caches a compressed latent."},
     {"role": "user", "content": "And why is that cheaper?"}],
    [{"role": "user", "content": "Сколько будет два плюс два?"}],
    [{"role": "system", "content": "Answer in JSON."},
     {"role": "user", "content": "Give me a user record with name and age."}],
    [{"role": "user", "content": "Write a haiku about GPUs 🖥️"}],
    [{"role": "user", "content": "List the planets of the solar system."}],
]

PARAGRAPH = (
    "Continuous batching lets a server add new requests to the running batch "
    "between steps, so that short replies leave early and long prompts are "
    "split into chunks that share a step with tokens being decoded. The paged "
    "key-value cache hands out fixed-size pages to each sequence and takes "
    "them back when it ends. Números, 数字 1234567890, and symbols #$%&* mix in. "
)


def long_text(chars, first=0):
    text = ""
    i = first
    while len(text) < chars:
        text += f"[{i}] " + PARAGRAPH
        i += 1
    return text[:chars]


def make_prompts(count, context, max_tokens):
    """`count` requests' bodies without the sampling fields: completions and
    chat alternating, two of them long (chunked prefill)."""
    prompts = []
    long_chars = max(200, int((context - max_tokens) * 2.6))
    for i in range(count):
        if i in (5, 20):
            prompts.append({"kind": "completions", "prompt": long_text(long_chars, first=i)})
        elif i % 2 == 0:
            prompts.append({"kind": "completions",
                            "prompt": SHORT_TEXTS[(i // 2) % len(SHORT_TEXTS)]})
        else:
            turns = CHAT_TURNS[(i // 2) % len(CHAT_TURNS)]
            if i >= 2 * len(CHAT_TURNS):
                turns = [dict(t) for t in turns]
                turns[-1]["content"] += f" (variant {i})"
            prompts.append({"kind": "chat", "messages": turns})
    return prompts


def greedy_body(model, prompt, max_tokens, stream):
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0,
            "return_tokens_as_token_ids": True}
    if prompt["kind"] == "chat":
        body.update(messages=prompt["messages"], logprobs=True, top_logprobs=TOP)
        path = "/v1/chat/completions"
    else:
        body.update(prompt=prompt["prompt"], logprobs=TOP)
        path = "/v1/completions"
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return path, body


def token_id(name):
    m = re.fullmatch(r"token_id:(\d+)", name)
    if not m:
        raise ValueError(f"token {name!r} is not 'token_id:N'")
    return int(m.group(1))


def steps_of(choice, chat):
    """[(token id, logprob, [(id, logprob) top...])] of one choice's logprobs."""
    lp = choice.get("logprobs")
    if lp is None:
        return []
    steps = []
    if chat:
        for entry in lp["content"]:
            top = [(token_id(t["token"]), t["logprob"]) for t in entry["top_logprobs"]]
            steps.append((token_id(entry["token"]), entry["logprob"], top))
    else:
        for name, value, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
            pairs = sorted(((token_id(k), v) for k, v in top.items()),
                           key=lambda p: (-p[1], p[0]))
            steps.append((token_id(name), value, pairs))
    return steps


def text_of(choice, chat):
    if chat:
        return (choice.get("message") or {}).get("content") or ""
    return choice.get("text") or ""


# ------------------------------------------------------------- checks ----

class Report:
    def __init__(self):
        self.rows = []  # (check, ok, detail)
        self.failed = False

    def add(self, check, ok, detail=""):
        self.rows.append((check, ok, detail))
        self.failed |= not ok
        print(f"{'ok' if ok else 'FAIL'}: {check}" + (f" ({detail})" if detail else ""),
              flush=True)

    def table(self, title):
        width = max(len(r[0]) for r in self.rows)
        print(f"\n{title}")
        for check, ok, detail in self.rows:
            print(f"  {check:<{width}}  {'ok  ' if ok else 'FAIL'}  {detail}")


def check_steps(steps, what, greedy, problems):
    """Log-probabilities make sense: ≤ 0, top sorted, greedy = top 1."""
    for k, (tok, lp, top) in enumerate(steps):
        if lp > 1e-6 or any(v > 1e-6 for _, v in top):
            problems.append(f"{what} token {k}: a log-probability > 0")
        if len(top) != TOP:
            problems.append(f"{what} token {k}: {len(top)} top entries, not {TOP}")
        if any(top[i][1] < top[i + 1][1] for i in range(len(top) - 1)):
            problems.append(f"{what} token {k}: top not sorted")
        if greedy and top and top[0][0] != tok and top[0][1] > lp:
            problems.append(f"{what} token {k}: greedy picked {tok} ({lp:.4f}) "
                            f"but {top[0][0]} has {top[0][1]:.4f}")


def run_alone(server, model, prompts, max_tokens, report):
    results = []
    problems = []
    start = time.monotonic()
    for i, prompt in enumerate(prompts):
        chat = prompt["kind"] == "chat"
        while True:
            path, body = greedy_body(model, prompt, max_tokens, stream=False)
            status, _, parsed, raw = server.post(path, body)
            if (status == 400 and parsed and prompt["kind"] == "completions" and
                    parsed["error"].get("code") == "context_length_exceeded" and
                    len(prompt["prompt"]) > 200):
                prompt["prompt"] = prompt["prompt"][: len(prompt["prompt"]) * 3 // 4]
                continue
            break
        if status != 200:
            problems.append(f"prompt {i}: HTTP {status} {raw[:200]!r}")
            results.append(None)
            continue
        choice = parsed["choices"][0]
        steps = steps_of(choice, chat)
        usage = parsed["usage"]
        if len(steps) != usage["completion_tokens"]:
            problems.append(f"prompt {i}: {len(steps)} logprob entries for "
                            f"{usage['completion_tokens']} tokens")
        if choice["finish_reason"] not in ("length", "stop"):
            problems.append(f"prompt {i}: finish_reason {choice['finish_reason']!r}")
        check_steps(steps, f"alone {i}", True, problems)
        results.append({"steps": steps, "text": text_of(choice, chat),
                        "usage": usage, "finish": choice["finish_reason"]})
    seconds = time.monotonic() - start
    tokens = sum(r["usage"]["completion_tokens"] for r in results if r)
    prompt_tokens = [r["usage"]["prompt_tokens"] for r in results if r]
    report.add("a. 32 prompts alone (greedy, top-3 logprobs)", not problems,
               f"{tokens} tokens in {seconds:.1f} s; prompts {min(prompt_tokens, default=0)}"
               f"-{max(prompt_tokens, default=0)} tokens" +
               ("; " + "; ".join(problems[:5]) if problems else ""))
    return results


class Peak:
    """Polls /metrics while a phase runs: the largest batch, pages in use."""

    def __init__(self, server):
        self.server, self.stop = server, threading.Event()
        self.running = self.pages = self.waiting = 0
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self):
        while not self.stop.is_set():
            try:
                m = metrics(self.server)
                self.running = max(self.running, m.get("dsv3_running_requests", 0))
                self.pages = max(self.pages, m.get("dsv3_kv_pages_in_use", 0))
                self.waiting = max(self.waiting, m.get("dsv3_waiting_requests", 0))
            except (OSError, RuntimeError, http.client.HTTPException):
                pass
            self.stop.wait(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *args):
        self.stop.set()
        self.thread.join()


def run_concurrent(server, model, prompts, max_tokens, alone, report):
    n = len(prompts)
    streams = [None] * n
    barrier = threading.Barrier(n)

    def client(i):
        path, body = greedy_body(model, prompts[i], max_tokens, stream=True)
        barrier.wait()
        try:
            streams[i] = server.stream(path, body)
        except Exception as e:  # noqa: BLE001 - reported as a failure
            streams[i] = {"error": repr(e)}

    before = metrics(server)
    start = time.monotonic()
    with Peak(server) as peak:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    seconds = time.monotonic() - start
    after = metrics(server)

    problems = []
    results = []
    for i, s in enumerate(streams):
        chat = prompts[i]["kind"] == "chat"
        what = f"stream {i}"
        if "error" in s or s["status"] != 200:
            problems.append(f"{what}: {s.get('error') or s['status']} {s.get('body', b'')[:200]!r}")
            results.append(None)
            continue
        errors = [e["error"] for e in s["events"] if "error" in e]
        if errors:
            problems.append(f"{what}: error event {errors[0]}")
        choices = [c for e in s["events"] for c in e.get("choices", [])]
        finishes = [c["finish_reason"] for c in choices if c.get("finish_reason") is not None]
        usage = [e["usage"] for e in s["events"] if e.get("usage")]
        steps = [st for c in choices for st in steps_of(c, chat)]
        text = "".join(((c.get("delta") or {}).get("content") or "") if chat else
                       (c.get("text") or "") for c in choices)
        if not s["done"]:
            problems.append(f"{what}: no [DONE]")
        if len(finishes) != 1 or finishes[0] not in ("length", "stop"):
            problems.append(f"{what}: finish reasons {finishes}")
        if len(usage) != 1:
            problems.append(f"{what}: {len(usage)} usage chunks")
        else:
            u = usage[0]
            if u["completion_tokens"] != len(steps):
                problems.append(f"{what}: usage says {u['completion_tokens']} tokens, "
                                f"{len(steps)} came")
            if alone[i] and u["prompt_tokens"] != alone[i]["usage"]["prompt_tokens"]:
                problems.append(f"{what}: prompt_tokens {u['prompt_tokens']}, alone "
                                f"{alone[i]['usage']['prompt_tokens']}")
            if u["total_tokens"] != u["prompt_tokens"] + u["completion_tokens"]:
                problems.append(f"{what}: total_tokens is not the sum")
        check_steps(steps, what, True, problems)
        results.append({"steps": steps, "text": text, "ttft": s["first_token_s"],
                        "finish": finishes[0] if finishes else None})
    tokens = sum(len(r["steps"]) for r in results if r)
    ttft = sorted(r["ttft"] for r in results if r and r["ttft"] is not None)
    preempted = after.get("dsv3_preemptions_total", 0) - before.get("dsv3_preemptions_total", 0)
    detail = (f"{n} streams, {tokens} tokens in {seconds:.2f} s ({tokens / seconds:.0f} tok/s); "
              f"peak batch {peak.running:.0f}, peak KV pages {peak.pages:.0f}; "
              f"time to first token median {statistics.median(ttft) * 1e3:.0f} ms, "
              f"max {ttft[-1] * 1e3:.0f} ms; preemptions {preempted:.0f}" if ttft else "no stream")
    report.add(f"b. {n} concurrent streams complete", not problems,
               detail + ("; " + "; ".join(problems[:5]) if problems else ""))
    return results, preempted


def compare(alone, concurrent, prompts, report):
    identical, within, outside, broken = 0, [], [], []
    max_prefix_diff = 0.0
    for i, (a, c) in enumerate(zip(alone, concurrent)):
        if a is None or c is None:
            broken.append(i)
            continue
        sa, sc = a["steps"], c["steps"]
        k = 0
        while k < min(len(sa), len(sc)) and sa[k][0] == sc[k][0]:
            max_prefix_diff = max(max_prefix_diff, abs(sa[k][1] - sc[k][1]))
            k += 1
        if k == len(sa) == len(sc):
            identical += 1
            if a["text"] != c["text"]:
                broken.append(i)
                print(f"  prompt {i}: same tokens, other text: {a['text']!r} vs {c['text']!r}")
            continue
        if k == min(len(sa), len(sc)):
            broken.append(i)  # one is a strict prefix of the other
            print(f"  prompt {i}: {len(sa)} tokens alone, {len(sc)} concurrent, equal up to the shorter")
            continue
        ta, lpa, topa = sa[k]
        tc, lpc, topc = sc[k]
        ok = ta in [t for t, _ in topc] and tc in [t for t, _ in topa]
        (within if ok else outside).append(i)
        fmt_top = lambda top: ", ".join(f"{t}:{v:.4f}" for t, v in top)  # noqa: E731
        print(f"  divergence, prompt {i} ({prompts[i]['kind']}) at token {k}: alone {ta} "
              f"({lpa:.4f}) top [{fmt_top(topa)}]; concurrent {tc} ({lpc:.4f}) top "
              f"[{fmt_top(topc)}] -> {'within' if ok else 'OUTSIDE'} top-{TOP}", flush=True)
    n = len(alone)
    report.add(f"c. concurrent = alone, or diverging within top-{TOP}",
               not outside and not broken,
               f"{identical}/{n} identical, {len(within)} divergences within top-{TOP}"
               f"{' (prompts ' + ', '.join(map(str, within)) + ')' if within else ''}, "
               f"{len(outside)} outside, {len(broken)} broken; largest |logprob| "
               f"difference before a divergence {max_prefix_diff:.2e}")


def check_idle(server, report, what):
    ok, m, waited = wait_idle(server, 15)
    report.add(what, ok, f"pages in use {m.get('dsv3_kv_pages_in_use'):.0f} of "
               f"{m.get('dsv3_kv_pages'):.0f}, running {m.get('dsv3_running_requests'):.0f}, "
               f"waiting {m.get('dsv3_waiting_requests'):.0f} after {waited:.1f} s")


# --------------------------------------------------------------- soak ----

def malformed_cases(model, context):
    """(name, method, path, body bytes, accepted statuses)."""
    too_long = {"model": model, "prompt": [100] * (context + 1), "max_tokens": 1}
    nested = b"[" * 200000 + b"]" * 200000
    cases = [
        ("not json", "POST", "/v1/completions", b"{not json", {400}),
        ("not an object", "POST", "/v1/completions", b"[1, 2, 3]", {400}),
        ("no model", "POST", "/v1/completions", b'{"prompt": "hi"}', {400}),
        ("unknown model", "POST", "/v1/completions",
         json.dumps({"model": "nope", "prompt": "hi"}).encode(), {404}),
        ("temperature 5", "POST", "/v1/completions",
         json.dumps({"model": model, "prompt": "hi", "temperature": 5}).encode(), {400}),
        ("logprobs 21", "POST", "/v1/completions",
         json.dumps({"model": model, "prompt": "hi", "logprobs": 21}).encode(), {400}),
        ("top_logprobs without logprobs", "POST", "/v1/chat/completions",
         json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}],
                     "top_logprobs": 2}).encode(), {400}),
        ("n 2", "POST", "/v1/completions",
         json.dumps({"model": model, "prompt": "hi", "n": 2}).encode(), {400}),
        ("empty messages", "POST", "/v1/chat/completions",
         json.dumps({"model": model, "messages": []}).encode(), {400}),
        ("bad role", "POST", "/v1/chat/completions",
         json.dumps({"model": model, "messages": [{"role": 7, "content": "x"}]}).encode(), {400}),
        ("prompt over the context", "POST", "/v1/completions",
         json.dumps(too_long).encode(), {400}),
        ("max_tokens 1e9", "POST", "/v1/completions",
         json.dumps({"model": model, "prompt": "hi", "max_tokens": 10 ** 9}).encode(), {400}),
        ("token id out of range", "POST", "/v1/completions",
         json.dumps({"model": model, "prompt": [1, 2, 10 ** 8]}).encode(), {400}),
        ("invalid UTF-8", "POST", "/v1/completions",
         b'{"model": "' + model.encode() + b'", "prompt": "\xff\xfe"}', {400}),
        ("deeply nested", "POST", "/v1/completions", nested, {400}),
        ("stop not strings", "POST", "/v1/completions",
         json.dumps({"model": model, "prompt": "hi", "stop": [1, 2]}).encode(), {400}),
        ("stream not boolean", "POST", "/v1/completions",
         json.dumps({"model": model, "prompt": "hi", "stream": "yes"}).encode(), {400}),
        ("unknown route", "POST", "/v1/embeddings", b"{}", {404}),
        ("wrong method", "GET", "/v1/completions", None, {405}),
    ]
    return cases


class Soak:
    def __init__(self, server, model, context, seconds, threads, seed):
        self.server, self.model, self.context = server, model, context
        self.seconds, self.threads, self.seed = seconds, threads, seed
        self.lock = threading.Lock()
        self.counts = {}       # kind -> requests
        self.statuses = {}     # status -> count
        self.failures = []     # descriptions
        self.tokens = 0
        self.server_errors = []
        self.cases = malformed_cases(model, context)
        self.pool = SHORT_TEXTS + [long_text(n) for n in (300, 900, 1500)]

    def count(self, kind, status):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def fail(self, text):
        with self.lock:
            self.failures.append(text)

    def note_5xx(self, kind, status, headers):
        if status >= 500 and not (status == 503 and "retry-after" in headers):
            with self.lock:
                self.server_errors.append(f"{kind}: HTTP {status}")

    def random_body(self, rng, stream):
        chat = rng.random() < 0.5
        max_tokens = rng.choice([1, 2, 8, 32, 64, 128, 200])
        body = {"model": self.model, "max_tokens": max_tokens}
        if chat:
            turns = rng.choice(CHAT_TURNS)
            if rng.random() < 0.3:
                turns = turns + [{"role": "user", "content": rng.choice(self.pool)}]
            body["messages"] = turns
        else:
            body["prompt"] = rng.choice(self.pool)
        r = rng.random()
        if r < 0.3:
            body["temperature"] = 0
        else:
            body["temperature"] = round(rng.uniform(0.2, 1.5), 2)
            if rng.random() < 0.5:
                body["top_p"] = round(rng.uniform(0.5, 1.0), 2)
            if rng.random() < 0.5:
                body["top_k"] = rng.choice([0, 1, 5, 50])
            if rng.random() < 0.3:
                body["min_p"] = round(rng.uniform(0, 0.2), 2)
            if rng.random() < 0.3:
                body["seed"] = rng.randrange(1 << 31)
        if rng.random() < 0.25:
            body["presence_penalty"] = round(rng.uniform(-1, 2), 2)
        if rng.random() < 0.25:
            body["frequency_penalty"] = round(rng.uniform(-1, 2), 2)
        if rng.random() < 0.15:
            body["stop"] = rng.choice([["\n"], ["the", "de"], "。"])
        if rng.random() < 0.3:
            n = rng.choice([0, 1, 5, 20])
            if chat:
                body.update(logprobs=True, top_logprobs=n)
            else:
                body["logprobs"] = n
        if stream:
            body["stream"] = True
            if rng.random() < 0.7:
                body["stream_options"] = {"include_usage": True}
        path = "/v1/chat/completions" if chat else "/v1/completions"
        return path, body, chat

    def check_reply(self, kind, body, chat, finishes, usage, steps):
        problems = []
        if len(finishes) != 1 or finishes[0] not in ("length", "stop"):
            problems.append(f"finish reasons {finishes}")
        if usage is not None:
            c = usage["completion_tokens"]
            if not 1 <= c <= body["max_tokens"]:
                problems.append(f"completion_tokens {c} for max_tokens {body['max_tokens']}")
            if finishes == ["length"] and c != body["max_tokens"]:
                problems.append(f"finish 'length' after {c} of {body['max_tokens']} tokens")
            with self.lock:
                self.tokens += c
            # logprobs 0 asks too (the chosen token's only); careful: 0 == False.
            wants = body.get("logprobs") is not None and body["logprobs"] is not False
            if wants and len(steps) != c:
                problems.append(f"{len(steps)} logprob entries for {c} tokens")
            if not wants and steps:
                problems.append("logprobs sent unasked")
        greedy = (body.get("temperature") == 0 and not body.get("presence_penalty") and
                  not body.get("frequency_penalty"))
        for k, (tok, lp, top) in enumerate(steps):
            if lp > 1e-6 or any(top[i][1] < top[i + 1][1] for i in range(len(top) - 1)):
                problems.append(f"token {k}: logprobs out of order or > 0")
                break
            if greedy and top and top[0][1] > lp:
                problems.append(f"token {k}: greedy {tok} ({lp}) is not the most likely {top[0]}")
                break
        if problems:
            self.fail(f"{kind}: " + "; ".join(problems) + f" (body {json.dumps(body)[:200]})")

    def one(self, rng):
        r = rng.random()
        if r < 0.30:
            kind = "complete"
            path, body, chat = self.random_body(rng, stream=False)
            status, headers, parsed, raw = self.server.post(path, body, timeout=60)
            self.count(kind, status)
            self.note_5xx(kind, status, headers)
            if status == 503 and "retry-after" in headers:
                return
            if status != 200:
                return self.fail(f"{kind}: HTTP {status} {raw[:200]!r} for {json.dumps(body)[:200]}")
            choice = parsed["choices"][0]
            self.check_reply(kind, body, chat, [choice["finish_reason"]], parsed["usage"],
                             steps_of_any(choice, chat))
        elif r < 0.60:
            kind = "stream"
            path, body, chat = self.random_body(rng, stream=True)
            s = self.server.stream(path, body, timeout=60)
            self.count(kind, s["status"])
            self.note_5xx(kind, s["status"], s["headers"])
            if s["status"] == 503 and "retry-after" in s["headers"]:
                return
            if s["status"] != 200 or not s["done"]:
                return self.fail(f"{kind}: HTTP {s['status']}, [DONE] {s['done']}, "
                                 f"{s['body'][:200]!r}")
            errors = [e for e in s["events"] if "error" in e]
            if errors:
                return self.fail(f"{kind}: error event {errors[0]}")
            choices = [c for e in s["events"] for c in e.get("choices", [])]
            finishes = [c["finish_reason"] for c in choices if c.get("finish_reason") is not None]
            usage = [e["usage"] for e in s["events"] if e.get("usage")]
            steps = [st for c in choices for st in steps_of_any(c, chat)]
            if body.get("stream_options") and len(usage) != 1:
                self.fail(f"{kind}: {len(usage)} usage chunks")
            self.check_reply(kind, body, chat, finishes, usage[0] if usage else None, steps)
        elif r < 0.78:
            kind = "disconnect"
            path, body, chat = self.random_body(rng, stream=True)
            body["max_tokens"] = max(body["max_tokens"], 64)
            s = self.server.stream(path, body, timeout=60,
                                   disconnect_after=rng.choice([0, 1, 2, 3, 5]))
            self.count(kind, s["status"])
            self.note_5xx(kind, s["status"], s["headers"])
        elif r < 0.82:
            # A client that sends a request and goes away before any reply.
            kind = "drop"
            path, body, _ = self.random_body(rng, stream=False)
            conn = self.server.connect()
            try:
                conn.request("POST", path, body=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
                time.sleep(rng.uniform(0, 0.05))
            finally:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self.count(kind, "dropped")
        elif r < 0.97:
            name, method, path, data, accepted = rng.choice(self.cases)
            kind = "malformed"
            status, headers, raw = self.server.request(method, path, data, timeout=60)
            self.count(kind, status)
            self.note_5xx(f"{kind} '{name}'", status, headers)
            if status not in accepted:
                return self.fail(f"{kind} '{name}': HTTP {status}, expected {sorted(accepted)}: "
                                 f"{raw[:200]!r}")
            try:
                error = json.loads(raw)["error"]
                assert isinstance(error["message"], str) and error["message"]
            except (ValueError, KeyError, TypeError, AssertionError):
                self.fail(f"{kind} '{name}': not an OpenAI error body: {raw[:200]!r}")
        else:
            kind = "get"
            path = rng.choice(["/health", "/v1/models", "/metrics"])
            status, headers, _ = self.server.request("GET", path, timeout=60)
            self.count(kind, status)
            self.note_5xx(kind, status, headers)
            if status != 200:
                self.fail(f"GET {path}: HTTP {status}")

    def worker(self, index, deadline):
        rng = random.Random(self.seed * 1000 + index)
        while time.monotonic() < deadline:
            try:
                self.one(rng)
            except Exception as e:  # noqa: BLE001 - every surprise is a failure
                self.fail(f"client {index}: {type(e).__name__}: {e}")

    def run(self):
        deadline = time.monotonic() + self.seconds
        start = time.monotonic()
        with Peak(self.server) as peak:
            threads = [threading.Thread(target=self.worker, args=(i, deadline))
                       for i in range(self.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.elapsed = time.monotonic() - start
        self.peak = peak


def steps_of_any(choice, chat):
    """steps_of for replies with or without return_tokens_as_token_ids:
    ids where given, else the token text (enough for ordering checks)."""
    lp = choice.get("logprobs")
    if lp is None:
        return []
    steps = []
    if chat:
        for e in lp["content"]:
            steps.append((e["token"], e["logprob"],
                          [(t["token"], t["logprob"]) for t in e["top_logprobs"]]))
    else:
        for name, value, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
            pairs = sorted(top.items(), key=lambda p: -p[1])
            # The dict holds the chosen token besides the top N: leave it out
            # of the ordering check when it is not among the most likely.
            steps.append((name, value, pairs))
    return steps


def run_soak(server, model, context, seconds, threads, seed, report):
    soak = Soak(server, model, context, seconds, threads, seed)
    soak.run()
    status, _, data = server.request("GET", "/health", timeout=10)
    report.add("e. /health after the soak", status == 200 and data.strip() == b"ok",
               f"HTTP {status}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(soak.counts.items()))
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(soak.statuses.items(), key=str))
    total = sum(soak.counts.values())
    report.add(f"e. soak {soak.elapsed:.0f} s, {threads} clients: requests ended properly",
               not soak.failures,
               f"{total} requests ({total / soak.elapsed:.1f}/s; {kinds}); statuses {statuses}; "
               f"{soak.tokens} tokens in finished replies; peak batch {soak.peak.running:.0f}, "
               f"peak waiting {soak.peak.waiting:.0f}, peak KV pages {soak.peak.pages:.0f}" +
               (f"; {len(soak.failures)} failures, first: {soak.failures[0]}" if soak.failures else ""))
    for failure in soak.failures[:20]:
        print(f"  soak failure: {failure}")
    report.add("e. no 5xx but 503 with Retry-After", not soak.server_errors,
               f"{len(soak.server_errors)}" +
               (f": {soak.server_errors[:3]}" if soak.server_errors else ""))
    check_idle(server, report, "e. KV pages back to 0 after the soak")
    m = metrics(server)
    report.add("e. no failed model step", m.get("dsv3_step_failures_total", 0) == 0,
               f"dsv3_step_failures_total {m.get('dsv3_step_failures_total', 0):.0f}, "
               f"preemptions {m.get('dsv3_preemptions_total', 0):.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--soak-seconds", type=float,
                        default=float(os.environ.get("DSV3_SOAK_SECONDS", 180)))
    parser.add_argument("--soak-clients", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--expect-preemption", action="store_true",
                        help="fail unless the concurrent phase preempted a request")
    parser.add_argument("--label", default="dsv3-run --serve")
    args = parser.parse_args()

    server = Server(args.host, args.port, timeout=120)
    report = Report()
    status, _, data = server.request("GET", "/v1/models")
    model_info = json.loads(data)["data"][0]
    model, context = model_info["id"], model_info["max_model_len"]
    print(f"model {model!r}, context {context} tokens", flush=True)

    prompts = make_prompts(args.clients, context, args.max_tokens)
    alone = run_alone(server, model, prompts, args.max_tokens, report)
    check_idle(server, report, "a. KV pages back to 0 after the alone runs")
    concurrent, preempted = run_concurrent(server, model, prompts, args.max_tokens,
                                           alone, report)
    compare(alone, concurrent, prompts, report)
    check_idle(server, report, "d. KV pages back to 0 after the streams")
    if args.expect_preemption:
        report.add("b. the small KV cache preempted requests", preempted > 0,
                   f"{preempted:.0f} preemptions")
    if args.soak_seconds > 0:
        run_soak(server, model, context, args.soak_seconds, args.soak_clients,
                 args.seed, report)
    report.table(f"serve check: {args.label}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
