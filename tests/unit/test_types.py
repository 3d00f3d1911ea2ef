"""``reasoner.types.filled``: a list filled in by index, narrowed to its item type, or an error naming the gap."""

from __future__ import annotations

import pytest

from reasoner.types import filled


@pytest.mark.parametrize(
    ("slots", "want"),
    [([1, 2, 3], [1, 2, 3]), ([], []), ([0, "", False], [0, "", False])],  # falsy values are set, not empty
)
def test_filled_keeps_every_set_slot_in_order(slots, want):
    assert filled(slots, "x") == want


@pytest.mark.parametrize(("slots", "empty"), [([None], "[0]"), ([1, None, 3, None], "[1, 3]")])
def test_filled_names_what_and_the_empty_slots(slots, empty):
    with pytest.raises(RuntimeError, match=rf"verdicts: slots \{empty}\ of {len(slots)} were never filled"):
        filled(slots, "verdicts")
