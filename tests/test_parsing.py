import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shala_lib.data.specs import CHAOSNLI, GOEMOTIONS, MSP_PODCAST
from shala_lib.generation.parsing import USABLE, parse_distribution, parse_many

E = [0.2, 0.5, 0.3]
# (completion, expected dist or None, expected status)
CORPUS = [
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}', E, "ok"),
    ('```json\n{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}\n```', E, "ok"),
    ('```\n{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}\n```', E, "ok"),
    ('Here is my answer: {"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3} Hope it helps!', E, "ok"),
    ("{'entailment': 0.2, 'neutral': 0.5, 'contradiction': 0.3}", E, "ok"),
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3,}', E, "ok"),
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3,\n}', E, "ok"),
    ('{"Entailment": 0.2, "Neutral": 0.5, "Contradiction": 0.3}', E, "ok"),
    ('{"ENTAILMENT": 0.2, "NEUTRAL": 0.5, "CONTRADICTION": 0.3}', E, "ok"),
    ('{" entailment ": 0.2, "neutral": 0.5, "contradiction": 0.3}', E, "ok"),
    ('{"entailment": "0.2", "neutral": "0.5", "contradiction": "0.3"}', E, "ok"),
    ('{"entailment": "20%", "neutral": "50%", "contradiction": "30%"}', E, "ok"),
    ('{"entailment": 20, "neutral": 50, "contradiction": 30}', E, "ok"),
    ('{"entailment": 20.0, "neutral": 50.0, "contradiction": 30.0}', E, "ok"),
    ('{"entailment": 2e-1, "neutral": 5e-1, "contradiction": 3e-1}', E, "ok"),
    ('{"entailment": .2, "neutral": .5, "contradiction": .3}', E, "ok"),
    ('{"entailment": 0.20, "neutral": 0.50, "contradiction": 0.30}\n\nExplanation: the premise...', E, "ok"),
    (
        "The premise says X. Entailment is unlikely.\nThere are multiple interpretations {like this}.\n"
        '{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}',
        E,
        "ok",
    ),
    (  # the first complete answer wins (issue 21): what the model wrote after it is not its answer
        '{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}\nRevised:\n'
        '{"entailment": 0.9, "neutral": 0.1, "contradiction": 0.0}',
        E,
        "ok",
    ),
    ('{"probabilities": {"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}}', E, "ok"),
    ('{"entailment": 0.2, "neutral": 0.5}', [0.2 / 0.7, 0.5 / 0.7, 0.0], "renormalized"),
    ('{"entailment": 0.4, "neutral": 0.6}', [0.4, 0.6, 0.0], "ok"),
    ('{"entailment": 0.33, "neutral": 0.33, "contradiction": 0.33}', [1 / 3] * 3, "renormalized"),
    ('{"entailment": 0.3, "neutral": 0.3, "contradiction": 0.3}', [1 / 3] * 3, "renormalized"),
    ('{"entailment": 1, "neutral": 0, "contradiction": 0}', [1, 0, 0], "ok"),
    ('{"entailment": 1.0, "neutral": 0.0, "contradiction": 0.0}\n\n1. The premise is', [1, 0, 0], "ok"),
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3', E, "ok"),  # truncated, repaired
    ('{"entailment": 0.2, "neutral": 0.5, "contra', [0.2 / 0.7, 0.5 / 0.7, 0.0], "renormalized"),
    ("entailment: 0.2, neutral: 0.5, contradiction: 0.3", E, "ok"),
    ("Entailment = 20%\nNeutral = 50%\nContradiction = 30%", E, "ok"),
    ('"entailment": 0.2\n"neutral": 0.5\n"contradiction": 0.3', E, "ok"),
    # an unknown key holding no mass is ignored (positive mass on one: unknown_keys, test_bad_inputs_parser.py)
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3, "other": 0.0}', E, "ok"),
    ('{"entailment": 0.2, "entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}', E, "ok"),
    ('{"entailment": 0.2, "entailment": 0.4, "neutral": 0.5, "contradiction": 0.3}', None, "duplicate_keys"),
    ('{"entailment": -0.2, "neutral": 0.7, "contradiction": 0.5}', None, "invalid_values"),
    ('{"entailment": NaN, "neutral": 0.5, "contradiction": 0.5}', None, "invalid_values"),
    ('{"entailment": Infinity, "neutral": 0.5, "contradiction": 0.5}', None, "invalid_values"),
    ('{"entailment": "high", "neutral": 0.5, "contradiction": 0.5}', None, "invalid_values"),
    ('{"entailment": null, "neutral": 0.5, "contradiction": 0.5}', None, "invalid_values"),
    ('{"entailment": true, "neutral": 0.5, "contradiction": 0.5}', None, "invalid_values"),
    ('{"entailment": 0, "neutral": 0, "contradiction": 0}', None, "zero_sum"),
    ('{"entailment": 0.0, "neutral": 0.0, "contradiction": 0.0}', None, "zero_sum"),
    ('{"label": "neutral", "confidence": 0.9}', None, "missing_keys"),
    ("{}", None, "missing_keys"),
    ("", None, "empty"),
    ("   \n  ", None, "empty"),
    ("1. The premise describes a child.\n2. The hypothesis adds a sandcastle.", None, "no_json"),
    ("I cannot determine the relationship.", None, "no_json"),
    ("[0.2, 0.5, 0.3]", None, "no_json"),
    ('{"entailment": 0.25, "neutral": 0.5, "contradiction": 0.25}', [0.25, 0.5, 0.25], "ok"),
    ('{"entail": 0.2, "neutral": 0.5, "contradict": 0.3}', E, "ok"),
    ('{\n  "entailment": 0.2,\n  "neutral": 0.5,\n  "contradiction": 0.3\n}', E, "ok"),
    ('{"entailment": 0.1, "neutral": 0.5, "contradiction": 0.3}', [0.1 / 0.9, 0.5 / 0.9, 0.3 / 0.9], "renormalized"),
    ('{"entailment": 2, "neutral": 5, "contradiction": 3}', E, "renormalized"),
    ('{"neutral": 0.5, "contradiction": 0.3, "entailment": 0.2}', E, "ok"),
    ('<answer>{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}</answer>', E, "ok"),
]


@pytest.mark.parametrize("text, expected, status", CORPUS)
def test_corpus(text, expected, status):
    res = parse_distribution(text, CHAOSNLI)
    assert res.status == status, res
    if expected is None:
        assert res.dist is None and not res.usable
    else:
        assert res.usable and np.allclose(res.dist, expected)


def test_corpus_is_large():
    assert len(CORPUS) >= 50


def test_prompt_keys_and_aliases():
    r = parse_distribution('{"Happy": 0.5, "angry": 0.25, "Sadness": 0.25}', MSP_PODCAST)
    assert r.status == "ok" and np.allclose(r.dist, [0.25, 0, 0, 0, 0.5, 0, 0.25, 0])
    r = parse_distribution('{"angry": 0.5, "Happy": 0.5}', GOEMOTIONS)  # aliases to anger / joy
    assert np.allclose(r.dist, [0.5, 0, 0, 0.5, 0, 0, 0])
    r = parse_distribution('{"Happy": 0.5, "happy": 0.5}', MSP_PODCAST)  # one class twice: counted once
    assert r.status == "renormalized" and r.raw_sum == 0.5 and r.dist[4] == 1.0
    r = parse_distribution('{"pos": 0.5, "neg": 0.5}', ["pos", "neg"])
    assert r.status == "ok"


def test_parse_many_marks_unparsable_rows():
    arr, statuses = parse_many(['{"entailment": 1}', "nope"], CHAOSNLI)
    assert statuses == ["ok", "no_json"]
    assert arr[0].tolist() == [1, 0, 0] and np.isnan(arr[1]).all()


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_any_string(text):
    res = parse_distribution(text, CHAOSNLI)
    assert res.status != "parser_error"
    if res.status in USABLE:
        assert res.dist.shape == (3,) and np.all(res.dist >= 0) and np.isclose(res.dist.sum(), 1.0)


json_like = st.builds(
    lambda vals, keys, junk: junk + "{" + ", ".join(f'"{k}": {v}' for k, v in zip(keys, vals)) + "}",
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 200)), min_size=1, max_size=4),
    st.lists(st.sampled_from(["entailment", "Neutral", "CONTRADICTION", "other", "e"]), min_size=1, max_size=4),
    st.text(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(json_like)
def test_ok_results_are_valid_distributions(text):
    res = parse_distribution(text, CHAOSNLI)
    assert res.status != "parser_error"
    if res.usable:
        assert res.dist.shape == (3,)
        assert np.all(np.isfinite(res.dist)) and np.all(res.dist >= 0)
        assert res.dist.sum() == pytest.approx(1.0)


def test_values_whose_sum_overflows_still_normalise():
    """Found by hypothesis: two finite values near the float maximum sum to inf, and dividing by
    that gave an all-zero 'distribution'."""
    res = parse_distribution('{"entailment": 8.988465674311579e+307, "Neutral": 8.98846567431158e+307}', CHAOSNLI)
    assert res.status == "renormalized" and res.raw_sum == float("inf")
    assert res.dist.tolist() == pytest.approx([0.5, 0.5, 0.0])


def test_simplex_grammar_only_admits_distributions():
    from shala_lib.generation.constrained import segments, viable

    segs = segments(CHAOSNLI)
    head = '{"entailment": '
    cases = {  # text -> (prefix of the json grammar, prefix of the simplex grammar)
        head + '0.5, "neutral": 0.3, "contradiction": 0.2}': (True, True),
        head + '1, "neutral": 1': (True, False),  # already more than 1
        head + '0.5, "neutral": 0.6': (True, False),
        head + '0.5, "neutral": 0.3, "contradiction": 0.3': (True, False),  # the rest is 0.2
        head + '0.5, "neutral": 0.3, "contradiction": 0.': (True, True),  # can still become 0.20
        head + '0.5, "neutral": 0.3, "contradiction": 0.20}': (True, True),
        head + '0.57, "neutral": 0.4': (True, True),  # 0.40..0.43 still fits
        head + '0.57, "neutral": 0.45': (True, False),
        head + '1.0, "neutral": 0, "contradiction": 0}': (True, True),
        head + '0.25, "neutral": 0.25, "contradiction": 1': (True, False),
    }
    for text, (json_ok, simplex_ok) in cases.items():
        assert viable(text, segs)[0] is json_ok, text
        assert viable(text, segs, simplex=True)[0] is simplex_ok, text


def test_simplex_constrained_predictions_sum_to_one(tiny_varied, chaos, tmp_path):
    from shala_lib.generation.inference import predict
    from shala_lib.generation.models import load_model

    model, tok = load_model(tiny_varied, device="cpu")
    items = chaos[chaos["split"] == "test"].head(6)
    kw = dict(prefill=True, constrained=True, batch_size=6, max_new_tokens=60, progress=False)
    simplex = predict(items, CHAOSNLI, model, tok, tmp_path / "s.jsonl", grammar="simplex", **kw)
    free = predict(items, CHAOSNLI, model, tok, tmp_path / "j.jsonl", grammar="json", **kw)
    assert (simplex["status"] == "ok").all()  # sums to 1 as written: nothing renormalised
    assert (free["status"] == "renormalized").any()  # the json grammar lets this model write {1, 1, ...}
    sums = [parse_distribution('{"entailment": ' + t, CHAOSNLI).raw_sum for t in simplex["raw_text"]]
    assert sums == pytest.approx([1.0] * 6)


@pytest.mark.parametrize("grammar", ["json", "simplex"])
def test_grammar_masks_remembered_per_prefix_equal_the_masks_worked_out_afresh(tiny_varied, grammar):
    """The processor remembers the allowed tokens per generated prefix (rollouts share prefixes); on random
    walks through the grammar its masks equal a fresh computation from `viable` row by row, and repeated
    prefixes are worked out once."""
    import torch

    from shala_lib.generation.constrained import JsonDistributionProcessor, viable
    from shala_lib.generation.models import load_tokenizer

    tok = load_tokenizer(tiny_varied)
    proc = JsonDistributionProcessor(tok, CHAOSNLI, prefill='{"entailment": ', grammar=grammar)
    simplex = grammar == "simplex"

    def fresh(ids: list[int]) -> set[int]:
        text = proc.prefill + tok.decode(ids, skip_special_tokens=True)
        ok, complete = viable(text, proc.segs, simplex)
        if complete or not ok:
            return set(proc.eos_ids)
        return {t for t, s in proc.candidates if viable(text + s, proc.segs, simplex)[0]} or set(proc.eos_ids)

    rng = np.random.default_rng(0)
    prompt = torch.zeros((8, 3), dtype=torch.long)
    rows = [[] for _ in range(8)]
    calls = 0
    for _ in range(12):
        ids = torch.cat([prompt, torch.tensor(rows, dtype=torch.long).reshape(8, -1)], dim=1)
        scores = torch.zeros((8, len(tok)))
        out = proc(ids, scores)
        calls += 8
        for r in range(8):
            allowed = set(torch.nonzero(out[r] == 0).flatten().tolist())
            assert allowed == fresh(rows[r]), (grammar, rows[r])
            pick = sorted(allowed)[rng.integers(len(allowed))] if r % 2 == 0 else sorted(allowed)[0]
            rows[r].append(int(pick))
    assert len(proc._allowed) < calls  # the odd rows share one path: worked out once per prefix
