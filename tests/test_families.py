"""The family table answers every family question: which family a deviation belongs to,
and which family flags the other side."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metric_tracker_rl import statistics as S
from metric_tracker_rl.families import FAMILIES, family_for, opposite


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.anomaly_type)
def test_a_deviation_on_a_familys_side_belongs_to_it(family):
    sides = {"up": (1.0,), "down": (-1.0,), "both": (1.0, -1.0)}[family.direction]
    for deviation in sides:
        assert family_for(family.entity_type, deviation) is family
    assert family_for(family.entity_type, 0.0) is None


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.anomaly_type)
def test_opposites_pair_up(family):
    other = opposite(family)
    assert other.entity_type == family.entity_type
    assert opposite(other) is family
    if other is not family:
        assert {family.direction, other.direction} == {"up", "down"}


def test_sides_no_family_flags():
    assert family_for("funnel_step", 1.0) is None  # a step rate that rose is no break
    assert family_for("data_quality", -1.0) is None


@given(st.integers(0, S.NUM_ENTITIES - 1), st.floats(allow_nan=True, allow_infinity=True))
def test_the_anomaly_type_of_a_deviation_is_its_family_s(col, deviation):
    """Rows take their anomaly type from a per-column table: the family_for answer."""
    from metric_tracker_rl.episode import anomaly_type_for

    family = family_for(S.ENTITIES[col].entity_type, deviation)
    assert anomaly_type_for(col, deviation) == (family.anomaly_type if family else "normal")
