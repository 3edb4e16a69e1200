"""Policy config files (schema "skipllm.policy", version 1; docs/policy_config.md) in Python.

The format's Python reader and writer, used by benchmarks/eval_sweep.py. It checks a file as
strictly as the engine's C++ reader (examples/engine/format/policy_config.cpp) and the CMake baker
(cmake/SkipllmBakedConfig.cmake): unknown fields, wrong types, out-of-range values and repeated
keys are errors whose message names the file and the field. All three are tested on the same
fixture files (tests/fixtures/policy_config, tests/python/test_policy_config.py).

    doc = load("cfg.json")            # the document as written, checked
    policy = effective_policy(doc)    # its policy with every default filled in
    save("out.json", document(policy, model={...}, produced_by={...}))
"""
import json
import math

SCHEMA = "skipllm.policy"
VERSION = 1
KINDS = ("greedy", "layer_greedy", "random_window", "static", "dense")
MAX_LAYERS = 256  # skipllm::LayerMask::kMaxLayers
TO_COLD_REGION = "all"

# The C++ reader's defaults (PolicyConfig in examples/engine/format/policy_config.hpp).
DEFAULTS = {"threshold": 0.95, "span": 8, "spans_per_token": 1, "warmup": {"tokens": 16, "every": 6},
            "cold": {"first": 5, "last": 5, "layers": []}, "skip_attention": False, "metric": "cosine"}
RANDOM_WINDOW_DEFAULTS = {"first": 0, "last": 1 << 30, "seed": 0}


class PolicyConfigError(ValueError):
    """An invalid config; the message names the file and the field."""


class _Fields:
    """Typed access to one JSON object's fields, naming the field path in every message."""

    def __init__(self, obj, path, source):
        self.path, self.source, self.seen = path, source, set()
        if not isinstance(obj, dict):
            if not path:
                raise PolicyConfigError(f"{source}: expected an object at the top level")
            self.fail(path, "expected an object")
        self.obj = obj

    def fail(self, field, what):
        raise PolicyConfigError(f"{self.source}: field '{field}': {what}")

    def at(self, key):
        return f"{self.path}.{key}" if self.path else key

    def find(self, key):
        self.seen.add(key)
        return self.obj.get(key)

    def need(self, key):
        if key not in self.obj:
            self.fail(self.at(key), "missing")
        return self.find(key)

    def done(self):
        for key in self.obj:
            if key not in self.seen:
                self.fail(self.at(key), "unknown field")

    def number(self, key, value, lo, hi):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(self.at(key), "expected a number")
        if not lo <= value <= hi:
            self.fail(self.at(key), f"must be between {lo:.9g} and {hi:.9g}, got {value:.9g}")
        return value

    def integer(self, key, value, lo, hi):
        v = self.number(key, value, lo, hi)
        if v != math.floor(v):
            self.fail(self.at(key), f"expected an integer, got {v:.9g}")
        return int(v)

    def string(self, key, value):
        if not isinstance(value, str):
            self.fail(self.at(key), "expected a string")
        return value

    def boolean(self, key, value):
        if not isinstance(value, bool):
            self.fail(self.at(key), "expected true or false")
        return value

    def array(self, key, value):
        if not isinstance(value, list):
            self.fail(self.at(key), "expected an array")
        return value


class _Object(dict):
    """A JSON object that remembers the first key it saw twice."""
    repeated = None


def _keep_repeats(pairs):
    obj = _Object()
    for key, value in pairs:
        if key in obj and obj.repeated is None:
            obj.repeated = key
        obj[key] = value
    return obj


def _first_repeat(value, path=""):
    """The path of the first repeated key, spelt as the C++ reader spells it ("policy.x", "a[].b")."""
    if isinstance(value, _Object):
        if value.repeated is not None:
            return f"{path}.{value.repeated}" if path else value.repeated
        for key, member in value.items():
            found = _first_repeat(member, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _first_repeat(item, path + "[]")
            if found:
                return found
    return None


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _check(doc, source):
    """Raises PolicyConfigError unless `doc` is a valid config (the C++ reader's checks)."""
    top = _Fields(doc, "", source)
    schema = top.string("schema", top.need("schema"))
    if schema != SCHEMA:
        top.fail("schema", f'expected "{SCHEMA}", got "{schema}"')
    version = top.integer("version", top.need("version"), 0, 1_000_000)
    if version != VERSION:
        top.fail("version", f"this skipllm reads version {VERSION}, got {version}")
    if "model" in doc:
        m = _Fields(top.find("model"), "model", source)
        for key in ("name", "file"):
            if key in m.obj:
                m.string(key, m.find(key))
        if "layers" in m.obj:
            m.integer("layers", m.find("layers"), 0, MAX_LAYERS)
        m.done()
    if "produced_by" in doc:
        p = _Fields(top.find("produced_by"), "produced_by", source)
        for key in ("tool", "command", "date", "data", "notes"):
            if key in p.obj:
                p.string(key, p.find(key))
        for key in ("target_skip", "achieved_skip", "perplexity_dense", "perplexity"):
            if key in p.obj:
                p.number(key, p.find(key), 0.0, 1e30)
        p.done()

    pol = _Fields(top.need("policy"), "policy", source)
    kind = pol.string("kind", pol.need("kind"))
    if kind not in KINDS:
        pol.fail("policy.kind", f'expected greedy, layer_greedy, random_window, static or dense, got "{kind}"')
    if "threshold" in pol.obj:
        pol.number("threshold", pol.find("threshold"), -1.0, 1.0)
    elif kind == "greedy":
        pol.fail("policy.threshold", "missing (required for kind greedy)")
    if "layer_thresholds" in pol.obj:
        a = pol.array("layer_thresholds", pol.find("layer_thresholds"))
        if not 1 <= len(a) <= MAX_LAYERS:
            pol.fail("policy.layer_thresholds", f"expected 1 to {MAX_LAYERS} entries")
        for i, t in enumerate(a):
            if t is not None:
                pol.number(f"layer_thresholds[{i}]", t, -1.0, 1.0)
    elif kind == "layer_greedy":
        pol.fail("policy.layer_thresholds", "missing (required for kind layer_greedy)")
    if "span" in pol.obj:
        span = pol.find("span")
        if isinstance(span, str):
            if span != TO_COLD_REGION:
                pol.fail("policy.span", f'expected an integer >= 1 or "all", got "{span}"')
        else:
            pol.integer("span", span, 1, 100_000)
    if "spans_per_token" in pol.obj:
        pol.integer("spans_per_token", pol.find("spans_per_token"), 0, 1_000)
    if "warmup" in pol.obj:
        w = _Fields(pol.find("warmup"), "policy.warmup", source)
        w.integer("tokens", w.need("tokens"), 0, 1_000_000)
        w.integer("every", w.need("every"), 0, 1_000_000)
        w.done()
    if "cold" in pol.obj:
        c = _Fields(pol.find("cold"), "policy.cold", source)
        c.integer("first", c.need("first"), 0, MAX_LAYERS)
        c.integer("last", c.need("last"), 0, MAX_LAYERS)
        if "layers" in c.obj:
            for i, l in enumerate(c.array("layers", c.find("layers"))):
                c.integer(f"layers[{i}]", l, 0, MAX_LAYERS - 1)
        c.done()
    if "random_window" in pol.obj:
        r = _Fields(pol.find("random_window"), "policy.random_window", source)
        r.number("length", r.need("length"), 0.0, MAX_LAYERS)
        first = r.integer("first", r.find("first"), 0, MAX_LAYERS) if "first" in r.obj else 0
        last = r.integer("last", r.find("last"), 0, MAX_LAYERS) if "last" in r.obj else 1 << 30
        if "seed" in r.obj:
            r.integer("seed", r.find("seed"), 0, 4294967295)
        if first > last:
            r.fail("policy.random_window.first", "must not exceed 'last'")
        r.done()
    elif kind == "random_window":
        pol.fail("policy.random_window", "missing (required for kind random_window)")
    if "static_layers" in pol.obj:
        for i, l in enumerate(pol.array("static_layers", pol.find("static_layers"))):
            pol.integer(f"static_layers[{i}]", l, 0, MAX_LAYERS - 1)
    elif kind == "static":
        pol.fail("policy.static_layers", "missing (required for kind static)")
    if "skip_attention" in pol.obj:
        pol.boolean("skip_attention", pol.find("skip_attention"))
    if "standin" in pol.obj:
        w = _Fields(pol.find("standin"), "policy.standin", source)
        if w.string("file", w.need("file")) == "":
            w.fail("policy.standin.file", "must name a file")
        if "feeds_decision" in w.obj:
            w.boolean("feeds_decision", w.find("feeds_decision"))
        w.done()
    if "metric" in pol.obj:
        metric = pol.string("metric", pol.find("metric"))
        if metric != "cosine":
            pol.fail("policy.metric", f'only "cosine" is available at runtime, got "{metric}"')
    pol.done()
    top.done()


def parse(text, source="policy config"):
    """The checked document of a config's JSON text; `source` names it in messages."""
    try:
        doc = json.loads(text, object_pairs_hook=_keep_repeats, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise PolicyConfigError(f"{source}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except ValueError as e:  # NaN / Infinity
        raise PolicyConfigError(f"{source}: invalid JSON: {e}") from None
    repeat = _first_repeat(doc)
    if repeat:
        raise PolicyConfigError(f"{source}: invalid JSON: duplicate key {repeat}")
    _check(doc, source)
    return doc


def load(path):
    """The checked document of the config file `path`."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyConfigError(f"cannot read policy config {path}: {e}") from None
    return parse(text, str(path))


def effective_policy(doc):
    """The document's policy with every default filled in (what the engine runs)."""
    policy = dict(DEFAULTS)
    policy.update(doc["policy"])
    policy["cold"] = dict(DEFAULTS["cold"], **policy["cold"])
    if "random_window" in policy:
        policy["random_window"] = dict(RANDOM_WINDOW_DEFAULTS, **policy["random_window"])
    return policy


def document(policy, model=None, produced_by=None):
    """A config document for `policy` (a dict of the "policy" object's fields)."""
    doc = {"schema": SCHEMA, "version": VERSION}
    if model is not None:
        doc["model"] = model
    if produced_by is not None:
        doc["produced_by"] = produced_by
    doc["policy"] = policy
    return doc


def save(path, doc):
    """Checks `doc` and writes it to `path` (indented JSON)."""
    _check(doc, str(path))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
