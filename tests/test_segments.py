from __future__ import annotations

import pytest

from edge_agent.segments import DEFAULT_BRACKETS, Brackets


@pytest.mark.parametrize(
    ("age", "bracket"),
    [
        (0.0, "0-12"),
        (12.99, "0-12"),
        (13.0, "13-19"),
        (19.99, "13-19"),
        (20.0, "20-34"),
        (34.5, "20-34"),
        (35.0, "35-54"),
        (54.99, "35-54"),
        (55.0, "55+"),
        (80.0, "55+"),
    ],
)
def test_default_bracket_edges(age, bracket):
    assert DEFAULT_BRACKETS.of(age) == bracket


def test_configurable_edges_make_their_own_labels():
    assert Brackets((18, 65)).labels == ("0-17", "18-64", "65+")
    assert Brackets((18, 65)).of(17.9) == "0-17"
    assert Brackets((18, 65)).of(65) == "65+"


@pytest.mark.parametrize("edges", [(), (20, 13), (13, 13), (0, 10)])
def test_bad_edges_are_refused(edges):
    with pytest.raises(ValueError, match="bracket edges"):
        Brackets(edges)
