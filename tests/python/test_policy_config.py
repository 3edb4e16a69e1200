#!/usr/bin/env python3
"""The Python reader and writer of policy config files (benchmarks/policy_config.py) on the shared
fixtures of tests/fixtures/policy_config, which the C++ reader (tests/engine/format/
test_policy_config.cpp) and the CMake baker (tests/baked) are tested on too: every valid file
reads as its .values file says, every invalid one is refused with the message
invalid/errors.txt gives. Run by CTest (python3 only, nothing to install)."""
import glob
import os
import sys
import tempfile
import unittest

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(SOURCE, "tests", "fixtures", "policy_config")
sys.path.insert(0, os.path.join(SOURCE, "benchmarks"))
import policy_config  # noqa: E402


def values_of(doc):
    """The values a config sets, defaults applied, in the .values fixture format (README.md there)."""
    p = policy_config.effective_policy(doc)
    lines = []

    def line(key, value):
        lines.append(f"{key}: {value}" if value != "" else f"{key}:")

    def number(v):
        return "%.6g" % v

    line("model.layers", doc.get("model", {}).get("layers", 0))
    line("kind", p["kind"])
    line("threshold", number(p["threshold"]))
    if p["kind"] == "layer_greedy":
        line("layer_thresholds", " ".join("null" if t is None else number(t) for t in p["layer_thresholds"]))
    line("span", p["span"] if p["span"] == "all" else int(p["span"]))
    line("spans_per_token", int(p["spans_per_token"]))
    line("warmup.tokens", int(p["warmup"]["tokens"]))
    line("warmup.every", int(p["warmup"]["every"]))
    line("cold.first", int(p["cold"]["first"]))
    line("cold.last", int(p["cold"]["last"]))
    line("cold.layers", " ".join(str(int(l)) for l in p["cold"]["layers"]))
    if p["kind"] == "random_window":
        w = p["random_window"]
        line("random_window.length", number(w["length"]))
        for key in ("first", "last", "seed"):
            line(f"random_window.{key}", int(w[key]))
    if p["kind"] == "static":
        line("static_layers", " ".join(str(int(l)) for l in p["static_layers"]))
    line("skip_attention", "true" if p["skip_attention"] else "false")
    return "\n".join(lines) + "\n"


class PolicyConfigFixtures(unittest.TestCase):
    def test_valid_fixtures_read_as_their_values_files(self):
        files = sorted(glob.glob(os.path.join(FIXTURES, "valid", "*.json")))
        self.assertGreaterEqual(len(files), 6)
        for path in files:
            with self.subTest(os.path.basename(path)):
                with open(os.path.splitext(path)[0] + ".values") as f:
                    self.assertEqual(values_of(policy_config.load(path)), f.read())

    def test_invalid_fixtures_are_refused_naming_file_and_field(self):
        cases = 0
        with open(os.path.join(FIXTURES, "invalid", "errors.txt")) as manifest:
            for entry in manifest:
                if not entry.strip() or entry.startswith("#"):
                    continue
                name, expected = entry.rstrip("\n").split(None, 1)
                path = os.path.join(FIXTURES, "invalid", name)
                cases += 1
                with self.subTest(name):
                    with self.assertRaises(policy_config.PolicyConfigError) as caught:
                        policy_config.load(path)
                    self.assertIn(path, str(caught.exception))
                    self.assertIn(expected, str(caught.exception))
        self.assertGreaterEqual(cases, 20)

    def test_repeated_keys_and_non_json_numbers_are_refused(self):
        head = '{"schema": "skipllm.policy", "version": 1, "policy": {"kind": "greedy", '
        for text, expected in [(head + '"threshold": 0.9, "threshold": 0.8}}', "duplicate key policy.threshold"),
                               (head + '"threshold": NaN}}', "invalid JSON"),
                               (head + '"threshold": 0.9, "skip_attention": 1}}', "field 'policy.skip_attention'"),
                               (head + '"threshold": true}}', "field 'policy.threshold': expected a number")]:
            with self.assertRaises(policy_config.PolicyConfigError) as caught:
                policy_config.parse(text, "t.json")
            self.assertIn(expected, str(caught.exception))

    def test_writer_and_reader_round_trip(self):
        for path in sorted(glob.glob(os.path.join(FIXTURES, "valid", "*.json"))):
            doc = policy_config.load(path)
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "out.json")
                policy_config.save(out, policy_config.document(doc["policy"], doc.get("model"), doc.get("produced_by")))
                self.assertEqual(policy_config.load(out), doc)
        with self.assertRaises(policy_config.PolicyConfigError):
            policy_config.save(os.devnull, policy_config.document({"kind": "greedy"}))


if __name__ == "__main__":
    unittest.main()
