"""Lexicon swaps (reversible, grammatical), counterfactual and perturbed versions with pair ids."""

import json
import random
from collections import Counter

import pytest
from django.test import override_settings

from apps.datasets import counterfactual, selectors, services
from apps.datasets.counterfactual import lexicon_get, swap_text
from apps.datasets.models import VersionSource
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version

# A fixed sample: (female text, male text). Each must swap into the other, both ways.
GENDER_SAMPLE = [
    ("She said her book was late.", "He said his book was late."),
    ("I saw her yesterday and thanked her.", "I saw him yesterday and thanked him."),
    ("The blue coat is hers.", "The blue coat is his."),
    ("Ms. Sarah Baker asked her manager to call her back.", "Mr. David Baker asked his manager to call him back."),
    ("SHE is a mother of two girls.", "HE is a father of two boys."),
    ("My wife and her sister drove herself home.", "My husband and his brother drove himself home."),
    ("Give it to her, not to the woman next door.", "Give it to him, not to the man next door."),
]


def test_it_ships_lexicons_with_a_source_and_licence():
    shipped = counterfactual.lexicons()
    assert {"gender", "name_origin", "age", "religion", "disability", "dialect"} <= set(shipped)
    for lexicon in shipped.values():
        assert lexicon.source and lexicon.licence and lexicon.origin == "shipped"


@pytest.mark.parametrize(("female", "male"), GENDER_SAMPLE)
def test_it_swaps_gender_grammatically_and_back(female, male):
    gender = lexicon_get("gender")
    assert swap_text(female, gender, "female", "male").text == male
    assert swap_text(male, gender, "male", "female").text == female
    assert swap_text(swap_text(female, gender, "female", "male").text, gender, "female", "male").text == female


def test_it_swaps_both_directions_in_one_pass():
    gender = lexicon_get("gender")
    swap = swap_text("He told her that she was right.", gender, "female", "male")
    assert swap.text == "She told him that he was right."
    assert swap.counts == {"female": 2, "male": 1}


@pytest.mark.parametrize(
    ("attribute", "a", "b", "text", "expected"),
    [
        ("name_origin", "anglo", "arabic", "Emily Smith applied for the loan.", "Fatima Haddad applied for the loan."),
        ("religion", "christian", "muslim", "The pastor spoke at the church on Christmas.",
         "The imam spoke at the mosque on Eid."),
        ("age", "young", "old", "A 25-year-old student asked for advice.", "A 75-year-old retiree asked for advice."),
        ("disability", "non_disabled", "disabled", "The applicant walks to work.",
         "The applicant uses a wheelchair to get to work."),
        ("dialect", "american", "british", "My favorite color is on the truck.",
         "My favourite colour is on the lorry."),
    ],
)  # fmt: skip
def test_it_swaps_every_shipped_attribute_reversibly(attribute, a, b, text, expected):
    lexicon = lexicon_get(attribute)
    assert swap_text(text, lexicon, a, b).text == expected
    assert swap_text(expected, lexicon, a, b).text == text


def test_it_leaves_words_that_merely_contain_a_term():
    gender = lexicon_get("gender")
    assert swap_text("The shepherd hemmed the manuscript.", gender, "female", "male").text == (
        "The shepherd hemmed the manuscript."
    )


def test_it_uses_a_teams_lexicon_and_refuses_a_broken_one(tmp_path):
    (tmp_path / "acme").mkdir()
    team = {"attribute": "pets", "values": ["cat", "dog"], "pairs": [["cat", "dog"], ["meow", "woof"]],
            "source": "ours", "licence": "CC0-1.0"}  # fmt: skip
    (tmp_path / "acme" / "pets.json").write_text(json.dumps(team))
    with override_settings(LEXICON_DIR=tmp_path):
        assert "pets" not in counterfactual.lexicons("other")
        pets = lexicon_get("pets", "acme")
        assert pets.origin == "project"
        assert swap_text("The cat said meow.", pets, "cat", "dog").text == "The dog said woof."
        (tmp_path / "broken.json").write_text(json.dumps({**team, "attribute": "x", "licence": ""}))
        with pytest.raises(counterfactual.LexiconError, match="broken.json: the lexicon has no 'licence'"):
            counterfactual.lexicons()


@pytest.mark.django_db
def test_it_makes_a_version_of_pairs_joined_by_pair_id(project, editor):
    dataset = DatasetFactory(project=project)
    source = make_dataset_version(
        dataset,
        [
            {"input": {"ticket": "She cannot log in to her account.", "n": 1}, "expected": "reset", "metadata": {}},
            {"input": {"ticket": "The invoice total is wrong.", "n": 2}, "expected": "billing", "metadata": {}},
            {"input": {"ticket": "He wants his money back.", "n": 3}, "expected": "refund", "metadata": {}},
        ],
        actor=editor,
    )
    new = services.dataset_version_counterfactual(version=source, actor=editor, attribute="gender", columns=["ticket"])
    assert new.source == VersionSource.COUNTERFACTUAL and new.number == 2 and new.row_count == 4
    records = list(selectors.version_records(version=new))
    by_pair = Counter(r["metadata"]["pair_id"] for r in records)
    assert by_pair == {"gender-1": 2, "gender-3": 2}
    first = [r for r in records if r["metadata"]["pair_id"] == "gender-1"]
    assert [(r["input"]["ticket"], r["metadata"]["attribute_value"], r["metadata"]["pair_role"]) for r in first] == [
        ("She cannot log in to her account.", "female", "original"),
        ("He cannot log in to his account.", "male", "counterfactual"),
    ]
    assert all(r["expected"] == "refund" for r in records if r["metadata"]["pair_id"] == "gender-3")
    assert source.row_count == 3  # the source version is untouched


@pytest.mark.django_db
def test_it_refuses_unknown_columns_attributes_and_values(project, editor):
    source = make_dataset_version(DatasetFactory(project=project), [{"input": {"q": "she"}}], actor=editor)
    with pytest.raises(services.DatasetError, match="no input column 'body'"):
        services.dataset_version_counterfactual(version=source, actor=editor, attribute="gender", columns=["body"])
    with pytest.raises(services.DatasetError, match="No lexicon for 'colour'"):
        services.dataset_version_counterfactual(version=source, actor=editor, attribute="colour", columns=["q"])
    with pytest.raises(services.DatasetError, match="'robot' is not a value of gender"):
        services.dataset_version_counterfactual(
            version=source, actor=editor, attribute="gender", columns=["q"], values=("female", "robot")
        )
    with pytest.raises(services.DatasetError, match="nothing to swap"):
        services.dataset_version_counterfactual(version=source, actor=editor, attribute="age", columns=["q"])


def test_the_perturbations_are_seeded():
    text = "Please check:\n- the invoice\n- the refund\n- the address"
    assert counterfactual.reorder(text, random.Random(1)) == counterfactual.reorder(text, random.Random(1))
    reordered = counterfactual.reorder(text, random.Random(1))
    assert reordered != text and sorted(reordered.split("\n")) == sorted(text.split("\n"))
    assert counterfactual.reorder("apples, pears, plums", random.Random(2)) in {
        "apples, plums, pears", "pears, apples, plums", "pears, plums, apples", "plums, apples, pears",
        "plums, pears, apples"}  # fmt: skip
    typo = counterfactual.typos("The refund has not arrived yet", random.Random(3), rate=0.2)
    assert typo != "The refund has not arrived yet"
    assert counterfactual.whitespace("a b. c", random.Random(0)).split() == ["a", "b.", "c"]


@pytest.mark.django_db
def test_it_makes_a_perturbed_version(project, editor):
    source = make_dataset_version(
        DatasetFactory(project=project),
        [{"input": {"q": "My order has not arrived, please help"}}, {"input": {"q": "Where is my parcel today"}}],
        actor=editor,
    )
    new = services.dataset_version_perturb(
        version=source, actor=editor, kinds=["typos", "casing"], columns=["q"], seed=7, rate=0.2
    )
    records = list(selectors.version_records(version=new))
    assert new.source == VersionSource.PERTURBATION and len(records) == 8
    assert Counter(r["metadata"]["pair_id"] for r in records) == {
        "typos-1": 2, "typos-2": 2, "casing-1": 2, "casing-2": 2}  # fmt: skip
    again = services.dataset_version_perturb(
        version=source, actor=editor, kinds=["typos", "casing"], columns=["q"], seed=7, rate=0.2
    )
    assert [r["input"] for r in selectors.version_records(version=again)] == [r["input"] for r in records]
    with pytest.raises(services.DatasetError, match="Paraphrase needs a model endpoint"):
        services.dataset_version_perturb(version=source, actor=editor, kinds=["paraphrase"], columns=["q"])
