"""DABench's closed-form scoring: what counts as an answer, what counts as right, and the three metrics."""

from __future__ import annotations

import pytest

from llm_agent_magic.evaluation.dataset import Label, read_labels
from llm_agent_magic.evaluation.scoring import Score, extract, is_equal, metrics, score


def label(*pairs: tuple[str, str]) -> Label:
    return Label("1", tuple(pairs))


def test_several_sub_answers_anywhere_in_the_answer():
    answer = "The mean is @mean_fare[34.65], and\n@median_fare[14.45] @std_fare[49.69] is the spread."
    assert extract(answer) == {"mean_fare": "34.65", "median_fare": "14.45", "std_fare": "49.69"}
    got = score(answer, label(("mean_fare", "34.65"), ("median_fare", "14.45"), ("std_fare", "49.7")))
    assert got.correct == {"mean_fare": True, "median_fare": True, "std_fare": False}
    assert not got.all_correct and got.share == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("given", "expected", "right"),
    [
        ("2.0", "2.00", True),  # both numbers: compared as numbers
        ("0.1234567", "0.1234561", True),  # within 1e-6
        ("0.123457", "0.123455", False),  # 2e-6 apart
        ("1e3", "1000", True),
        (" 3.5 ", "3.5", True),  # Python's float() reads surrounding spaces, as the published scorer does
        ("yes", "yes", True),  # strings: exactly equal
        ("Yes", "yes", False),
        ("not normal", "not_normal", False),
        ("nan", "nan", True),  # the same text; as numbers NaN would never be equal
        ("nan", "0", False),
        ("inf", "inf", True),
        ("inf", "1e309", False),  # not finite: not compared as numbers
        ("", "0", False),
        (None, "0", False),  # missing
    ],
)
def test_numbers_compare_within_a_tolerance_strings_exactly(given, expected, right):
    assert is_equal(given, expected) is right


def test_a_missing_sub_answer_is_wrong_and_an_extra_one_is_ignored():
    got = score("@a[1] @unasked[7]", label(("a", "1"), ("b", "2")))
    assert got.correct == {"a": True, "b": False}
    assert got.predicted == {"a": "1", "unasked": "7"}
    assert score("", label(("a", "1"))).correct == {"a": False}  # a run that errored: every sub-answer wrong


def test_malformed_answers():
    # No closing bracket: no answer. A bracket never closed swallows text up to the next "]" on its line.
    assert extract("@mean[3.5") == {}
    assert extract("@a[1 @b[2]") == {"a": "1 @b[2"}
    assert extract("@a[1\n] @b[2]") == {"b": "2"}  # a value does not span lines
    assert extract("@ a[1] @-b[2] @[3] a[4]") == {}  # the name must follow '@' and be a word
    assert extract("@a[] @b[[5]]") == {"a": "", "b": "[5"}
    assert extract("@a[1] then corrected: @a[2]") == {"a": "2"}  # the last value of a name wins


def test_answers_inside_code_blocks_and_markdown_count():
    answer = "Result:\n```\n@count[42]\n```\nand `@name[Nord]`, **@share[0.5]**"
    assert extract(answer) == {"count": "42", "name": "Nord", "share": "0.5"}


def test_label_values_given_as_numbers_are_read_as_their_text(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"id": 3, "common_answers": [["n", 12], ["r", 0.5], ["s", "x"]]}\n')
    assert read_labels(path)["3"].answers == (("n", "12"), ("r", "0.5"), ("s", "x"))


def test_the_three_metrics_overall_and_by_level():
    scored = [
        ("easy", Score({"a": "1"}, {"a": "1"}, {"a": True})),
        ("easy", Score({"a": "1", "b": "2"}, {"a": "1"}, {"a": True, "b": False})),
        ("hard", Score({"a": "1", "b": "2", "c": "3", "d": "4"}, {}, {"a": True, "b": True, "c": True, "d": False})),
    ]
    m = metrics(scored)
    assert (m.questions, m.sub_answers) == (3, 7)
    assert m.abq == pytest.approx(1 / 3)  # only the first has every sub-answer right
    assert m.psaq == pytest.approx((1 + 0.5 + 0.75) / 3)  # per question, then averaged
    assert m.uasq == pytest.approx(5 / 7)  # over all sub-answers
    assert list(m.by_level) == ["easy", "hard"]
    assert m.by_level["easy"].abq == pytest.approx(0.5) and m.by_level["hard"].uasq == pytest.approx(0.75)
    assert m.to_dict()["by_level"]["hard"]["psaq"] == 0.75
    assert metrics([]).to_dict() == {"questions": 0, "sub_answers": 0, "abq": 0.0, "psaq": 0.0, "uasq": 0.0}
