"""Answers that must never be read as something the model did not say: probability mass on unknown keys
(a misspelt label) makes an answer unusable, and a complete answer followed by a truncated one keeps
the complete one. Every case asserts the exact status and the exact distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shala_lib.data.specs import CHAOSNLI, GOEMOTIONS
from shala_lib.generation.parsing import STATUSES, USABLE, parse_distribution, parse_many

FULL = '{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3}'
# (completion, expected distribution or None, status, unknown keys recorded)
CASES = [
    # mass on an unknown key: unusable, whatever is left
    ('{"entailmnet": 0.7, "neutral": 0.2, "contradiction": 0.1}', None, "unknown_keys", ("entailmnet",)),
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.2, "other": 0.1}', None, "unknown_keys", ("other",)),
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3, "unsure": "10%"}', None, "unknown_keys", ("unsure",)),
    (
        '{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3, "confidence": 0.9}',
        None,
        "unknown_keys",
        ("confidence",),
    ),
    ('{"Entailmnet": 20, "Neutral": 50, "Contradicton": 30}', None, "unknown_keys", ("Entailmnet", "Contradicton")),
    ('{"probabilities": {"entailment": 0.6, "neutral": 0.3, "maybe": 0.1}}', None, "unknown_keys", ("maybe",)),
    ('"entailmnet": 0.7, "neutral": 0.2, "contradiction": 0.1', None, "unknown_keys", ("entailmnet",)),  # regex
    # unknown keys holding no mass are ignored
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3, "other": 0}', [0.2, 0.5, 0.3], "ok", ("other",)),
    (
        '{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3, "reasoning": "the premise"}',
        [0.2, 0.5, 0.3],
        "ok",
        ("reasoning",),
    ),
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3, "note": null}', [0.2, 0.5, 0.3], "ok", ("note",)),
    ('{"entailment": 0.4, "neutral": 0.4, "other": 0.0}', [0.5, 0.5, 0.0], "renormalized", ("other",)),
    # an object naming no class at all stays missing_keys; invalid class values are reported first
    ('{"entailmnet": 1.0}', None, "missing_keys", ()),
    ('{"entailment": -0.1, "neutral": 0.5, "contradiction": 0.3, "other": 0.3}', None, "invalid_values", ("other",)),
    # a complete answer followed by a truncated one: the complete one wins
    (FULL + '\nOn reflection: {"entailment": 0.9, "neutral": 0.1, "contra', [0.2, 0.5, 0.3], "ok", ()),
    (FULL + '\n{"entailment": 0.9, "neu', [0.2, 0.5, 0.3], "ok", ()),
    (FULL + "\n```json\n{", [0.2, 0.5, 0.3], "ok", ()),
    # two complete answers: the first one wins (what follows an answer is not the answer)
    (FULL + '\nRevised: {"entailment": 0.6, "neutral": 0.4, "contradiction": 0.0}', [0.2, 0.5, 0.3], "ok", ()),
    ('{"entailment": 0.2, "neutral": 0.5, "contradiction": 0.3', [0.2, 0.5, 0.3], "ok", ()),  # only truncated
    ('Thinking {aside}. {"entailment": 0.25, "neutral": 0.75, "contrad', [0.25, 0.75, 0.0], "ok", ()),
]


@pytest.mark.parametrize("text, expected, status, unknown", CASES)
def test_bad_answer(text, expected, status, unknown):
    res = parse_distribution(text, CHAOSNLI)
    assert res.status == status, res
    assert res.unknown_keys == unknown
    if expected is None:
        assert res.dist is None and not res.usable
    else:
        assert res.usable and res.dist.tolist() == pytest.approx(expected, abs=1e-12)


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 15


def test_unknown_keys_is_a_known_unusable_status():
    assert "unknown_keys" in STATUSES and "unknown_keys" not in USABLE
    arr, statuses = parse_many(['{"entailmnet": 0.7, "neutral": 0.3}', FULL], CHAOSNLI)
    assert statuses == ["unknown_keys", "ok"]
    assert np.isnan(arr[0]).all() and arr[1].tolist() == pytest.approx([0.2, 0.5, 0.3])


def test_aliases_are_not_unknown_keys():
    res = parse_distribution('{"angry": 0.5, "Happy": 0.5}', GOEMOTIONS)  # aliases of anger / joy
    assert res.status == "ok" and res.unknown_keys == ()
    assert res.dist.tolist() == [0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]


def test_unknown_keys_score_like_any_unparsable_answer():
    """The reward gives an answer with unknown mass what it gives an unparsable one, and logs its status."""
    from shala_lib.scoring.rewards import make_reward_func

    logged: dict = {}
    reward = make_reward_func("shala", CHAOSNLI)
    out = reward(
        completions=['{"entailmnet": 0.7, "neutral": 0.2, "contradiction": 0.1}', "no answer", FULL],
        target=[[0.2, 0.5, 0.3]] * 3,
        log_extra=lambda k, v: logged.__setitem__(k, v),
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert logged["parse_status"] == ["unknown_keys", "no_json", "ok"]
    assert logged["parse_fail_rate"] == pytest.approx(2 / 3)
    entropy = -sum(p * math.log(p) for p in (0.2, 0.5, 0.3)) / math.log(3)  # a perfect answer: H~ x 1
    assert out == pytest.approx([0.0, 0.0, entropy])


@pytest.mark.parametrize(
    ("text", "classes", "expected"),
    [
        ('{"not_sarcastic": 0.5, "sarcastic": 0.5}', ["not_sarcastic", "sarcastic"], [0.5, 0.5]),
        ('{"non-toxic": 0.2, "toxic": 0.8}', ["non-toxic", "toxic"], [0.2, 0.8]),
        ('{"very  bad": 0.2, "good": 0.8}', ["very  bad", "good"], [0.2, 0.8]),
        ('{"not sarcastic": 0.1, "Sarcastic": 0.9}', ["not_sarcastic", "sarcastic"], [0.1, 0.9]),
        ('{"cafe\u0301": 0.7, "tea": 0.3}', ["caf\u00e9", "tea"], [0.7, 0.3]),  # NFD key, NFC class
        ("not_sarcastic: 0.3, sarcastic: 0.7", ["not_sarcastic", "sarcastic"], [0.3, 0.7]),  # regex fallback
        ('{"entailment": "50%", "neutral": 30, "contradiction": 20}', CHAOSNLI.classes, [0.5, 0.3, 0.2]),
    ],
)
def test_class_spellings_and_mixed_percentages(text, classes, expected):
    """Class names with `_`, `-`, double spaces or another Unicode form are read as the definition
    compares them (`label_key`); a `%` beside bare numbers summing to 100 makes them all percentages."""
    res = parse_distribution(text, classes)
    assert res.status == "ok" and np.allclose(res.dist, expected, atol=1e-12), res
