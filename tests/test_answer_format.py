"""Answer formats (``@name[value]``): what a request asks for, what code printed, what an answer left out."""

from __future__ import annotations

from llm_agent_magic import answer_format
from llm_agent_magic.agents.classifier import clear_mode
from llm_agent_magic.evaluation.scoring import extract
from llm_agent_magic.tools.python_coder.coder import needs_adequacy_check

DABENCH = (
    "What is the mean wage?\n\nConstraints: Use ddof=1.\nDrop missing values.\n\n"
    "Answer format: @mean_wage[value] @n[count], two decimals\n\nUse the attached file wages.csv."
)


def test_scan_reads_values_as_dabench_does():
    text = "x @a[1] @b[two words] @c[no close\n@d[] @e[x]y] @[nameless] @f[3]"
    assert answer_format.scan(text) == [("a", "1"), ("b", "two words"), ("d", ""), ("e", "x"), ("f", "3")]
    # The same reading as the scorer's, for the cases it reads.
    assert {k: v for k, v in answer_format.scan(text)} == extract(text)


def test_scan_of_hostile_output_is_bounded_and_right():
    # Many openings that never close on their line: each character is looked at a bounded number of times.
    hostile = "@a[" * 100_000 + "\n@z[9]"
    assert answer_format.scan(hostile, limit=len(hostile)) == [("z", "9")]
    assert answer_format.scan("@" * 100_000 + "b[1]") == [("b", "1")]
    assert answer_format.scan("@x[" * 1000) == []


def test_requested_names_and_lines():
    wanted = answer_format.requested(DABENCH)
    assert wanted.names == ("mean_wage", "n")
    assert wanted.text == "Answer format: @mean_wage[value] @n[count], two decimals"
    assert not answer_format.requested("What is the mean wage?")
    assert answer_format.requested("@a[x] @a[y]").names == ("a",)
    two_lines = "Mean fare?\n\nAnswer format: @mean_fare[value]\nwhere value is rounded to two decimals.\n\nThanks"
    assert answer_format.requested(two_lines).text == "Answer format: @mean_fare[value]\nwhere value is rounded to two decimals."


def test_stated_constraints_are_verbatim():
    assert answer_format.stated_constraints(DABENCH) == "Constraints: Use ddof=1.\nDrop missing values."
    assert answer_format.stated_constraints("Plot revenue by month.") == "Plot revenue by month."
    assert answer_format.stated_constraints("x" * 2000) == ""


def test_printed_values_a_later_print_wins_and_long_values_are_not_values():
    outputs = ["@mean_wage[5.00]\n@other[1]", f"@mean_wage[5.01]\n@n[{'9' * 500}]"]
    assert answer_format.printed_values(outputs, ("mean_wage", "n")) == {"mean_wage": "5.01"}


def test_complete_answer_adds_only_what_was_left_out():
    outputs = ["dtypes ok\n@mean_wage[5.01]\n@n[3]"]
    answer, added = answer_format.complete_answer("The mean is @mean_wage[5.0].", outputs, ("mean_wage", "n"))
    assert added == {"n": "3"}
    assert answer == "The mean is @mean_wage[5.0].\n\n@n[3]"  # the answer's own value is kept
    assert extract(answer) == {"mean_wage": "5.0", "n": "3"}
    assert answer_format.complete_answer("All here: @n[3] @mean_wage[5.01]", outputs, ("mean_wage", "n"))[1] == {}
    assert answer_format.complete_answer("No format asked", outputs, ()) == ("No format asked", {})


def test_the_adequacy_check_runs_only_when_the_output_carries_nothing_requested():
    assert needs_adequacy_check("", "What is the mean?")
    assert not needs_adequacy_check("mean 20.0", "What is the mean?")  # no format: the answer step judges
    assert not needs_adequacy_check("@mean_wage[5.01]", DABENCH)
    assert not needs_adequacy_check("mean_wage = 5.01", DABENCH)
    assert needs_adequacy_check("shape (3, 2)", DABENCH)
    assert needs_adequacy_check("rows_n = 3, mean_wages = 5", DABENCH)  # 'n' and 'mean_wage' only inside names
    assert not needs_adequacy_check("n: 3", DABENCH)


def test_a_table_and_a_question_go_to_react_without_the_classifier():
    assert clear_mode("What is the mean price?", ["data/sales.csv"]).mode == "react"
    assert clear_mode("Mean price. Answer format: @mean[v]", ["sales.xlsx"]).mode == "react"
    assert clear_mode("Load sales.csv and total the price by region.", ["sales.csv"]) is None  # may need a plan
    assert clear_mode("What is a p-value?", []) is None
    assert clear_mode("What does this say?", ["notes.pdf"]) is None
