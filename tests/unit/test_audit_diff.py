"""Field-level diffs written to the audit trail."""

from __future__ import annotations

from signal_admin.resolvers.audit import MASK, created, diff


class TestDiff:
    def test_lists_only_the_changed_fields(self) -> None:
        changes = diff(
            {"name": "Shop", "enabled": True}, {"name": "Store", "enabled": True}
        )

        assert changes == {"name": {"old": "Shop", "new": "Store"}}

    def test_names_added_and_removed_fields(self) -> None:
        changes = diff({"gone": 1}, {"new": 2})

        assert changes == {
            "gone": {"old": 1, "new": None},
            "new": {"old": None, "new": 2},
        }

    def test_compares_nested_documents_by_value(self) -> None:
        changes = diff({"config": {"a": [1, 2]}}, {"config": {"a": [1, 2]}})

        assert changes == {}

    def test_masks_secret_fields(self) -> None:
        changes = diff(
            {"api_key": "old-secret"}, {"api_key": "new-secret"}, ["api_key"]
        )

        assert changes == {"api_key": {"old": MASK, "new": MASK}}

    def test_masks_a_secret_being_set_for_the_first_time(self) -> None:
        changes = diff({}, {"api_key": "secret"}, ["api_key"])

        assert changes == {"api_key": {"old": None, "new": MASK}}

    def test_leaves_out_a_secret_that_did_not_change(self) -> None:
        changes = diff({"api_key": "same"}, {"api_key": "same"}, ["api_key"])

        assert changes == {}


class TestCreated:
    def test_shows_every_field_as_new(self) -> None:
        changes = created({"name": "Shop", "token": "t"}, ["token"])

        assert changes == {
            "name": {"old": None, "new": "Shop"},
            "token": {"old": None, "new": MASK},
        }
