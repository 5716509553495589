"""Lesson 10 (E資格 review): every question is in the notebook as the checker knows it, the committed
answers are right, every wrong answer gets its reason, and the answers that can be computed are."""
from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import nbformat
import pytest

from gradcam_helpers.exercises import STUB, has_solution, replace_solutions
from gradcam_helpers.exercises.lesson10 import QUESTIONS, check_answer

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "10_exam_review.ipynb"


@pytest.fixture(scope="module")
def cells():
    return nbformat.read(NOTEBOOK, as_version=4).cells


def _question_cells(cells, qid):
    """(markdown, answer cell, check cell) of one question: the check cell follows the answer cell."""
    n = int(qid[1:])
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and cell.source.startswith(f"**問 {n}** "):
            return cell, cells[i + 1], cells[i + 2]
    raise AssertionError(f"no markdown cell starts with **問 {n}**")


def test_at_least_fifteen_questions_cover_the_syllabus():
    assert len(QUESTIONS) >= 15
    topics = " ".join(q.topic for q in QUESTIONS.values())
    for word in ("CAM", "GAP", "ReLU", "softmax", "層", "形", "Grad-CAM++", "Score-CAM", "Guided",
                 "Sanity", "Integrated Gradients", "局所", "LIME", "SHAP", "Shapley"):
        assert word in topics, word


@pytest.mark.parametrize("qid", sorted(QUESTIONS))
def test_notebook_shows_the_question_as_the_checker_knows_it(cells, qid):
    text, answer, check = _question_cells(cells, qid)
    q = QUESTIONS[qid]
    assert f"({q.topic})" in text.source
    shown = re.findall(r"^- \(([a-z])\) (.*)$", text.source, re.M)
    assert shown == list(q.choices.items())
    assert answer.cell_type == "code" and has_solution(answer.source)
    assert f"answer_{qid} = " in answer.source
    assert check.cell_type == "code" and check.source.strip() == f'check_answer("{qid}", answer_{qid})'


@pytest.mark.parametrize("qid", sorted(QUESTIONS))
def test_committed_answer_is_right_and_explained(cells, qid, capsys):
    _, answer, check = _question_cells(cells, qid)
    scope = {"check_answer": check_answer}
    exec(answer.source, scope)
    exec(check.source, scope)
    out = capsys.readouterr().out
    assert "正解です" in out and QUESTIONS[qid].explanation in out
    # and the executed notebook shows the same
    assert any("正解です" in o.get("text", "") for o in check.outputs)


@pytest.mark.parametrize("qid", sorted(QUESTIONS))
def test_student_copy_leaves_the_answer_blank(cells, qid):
    _, answer, _ = _question_cells(cells, qid)
    stub = replace_solutions(answer.source)
    assert STUB.splitlines()[0] in stub and repr(QUESTIONS[qid].answer) not in stub
    with pytest.raises(NotImplementedError):
        exec(stub, {})


WRONG = [(qid, wrong, why) for qid, q in QUESTIONS.items() for wrong, why in q.why_wrong.items()]


@pytest.mark.parametrize("qid, wrong, why", WRONG, ids=[f"{q}-{w}" for q, w, _ in WRONG])
def test_each_wrong_answer_gets_its_reason(qid, wrong, why):
    with pytest.raises(AssertionError) as info:
        check_answer(qid, wrong)
    assert why in str(info.value) and "不正解" in str(info.value)


def test_every_wrong_choice_has_a_reason():
    for qid, q in QUESTIONS.items():
        if q.kind == "choice":
            assert q.answer in q.choices, qid
            assert set(q.why_wrong) == set(q.choices) - {q.answer}, qid


def test_unanswered_and_malformed_answers_say_what_to_enter():
    with pytest.raises(AssertionError, match="まだ答えていません"):
        check_answer("q01", None)
    with pytest.raises(AssertionError, match="選択肢の記号"):
        check_answer("q01", "e")
    with pytest.raises(AssertionError, match="数を 1 つ"):
        check_answer("q04", "121")
    with pytest.raises(AssertionError, match="タプル"):
        check_answer("q09", 11)
    with pytest.raises(AssertionError, match="もう一度|hint|Σ|平均|形"):
        check_answer("q04", 100)
    with pytest.raises(KeyError, match="unknown question"):
        check_answer("q99", "a")
    check_answer("q01", " A ")          # case and spaces are forgiven
    check_answer("q09", [11, 11, 64])   # a list is a shape too


def test_numeric_answers_are_computed_not_made_up():
    keras = pytest.importorskip("keras")
    from gradcam_helpers.models.keras_mnist import build_mnist_cnn

    model = build_mnist_cnn()
    h, w, k = model.get_layer("conv2").output.shape[1:]
    assert QUESTIONS["q09"].answer == (h, w, k)
    assert QUESTIONS["q04"].answer == h * w
    assert QUESTIONS["q10"].answer == k
    assert keras is not None


def test_shapley_answer_follows_from_the_game_in_the_question(cells):
    text, _, _ = _question_cells(cells, "q21")
    values = {}
    for members, value in re.findall(r"v\(\\\{([A-C,]+)\\\}\)=(\d+)", text.source):
        values[frozenset(members.split(","))] = float(value)
    values[frozenset()] = 0.0
    assert len(values) == 8
    players = ["A", "B", "C"]
    phi = {}
    for p in players:
        others = [q for q in players if q != p]
        phi[p] = sum(math.factorial(len(s)) * math.factorial(2 - len(s)) / 6
                     * (values[frozenset(s) | {p}] - values[frozenset(s)])
                     for r in range(3) for s in itertools.combinations(others, r))
    assert math.isclose(sum(phi.values()), values[frozenset(players)])
    assert math.isclose(phi["A"], QUESTIONS["q21"].answer)
