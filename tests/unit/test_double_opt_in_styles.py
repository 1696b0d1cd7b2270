"""SALESmanago's two double opt-in styles: the confirmation e-mail named by its id (the current
style) or by template, sending account and subject (the older one); the settings that choose
between them, and what a subscribing contact carries in each case. Pure: no network, no database."""

from __future__ import annotations

import pytest

from smbc.consent.plan import consent_plan_for, double_opt_in_for
from smbc.mapping import records as mapping
from smbc.mapping.rules import ConsentFlags
from smbc.settings.store_settings import SettingsInvalid, StoreSettings, apply_changes

EMAIL_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
OLDER_KEYS = ("apiDoubleOptInEmailTemplateId", "apiDoubleOptInEmailAccountId", "apiDoubleOptInEmailSubject")
SUBSCRIBING = ConsentFlags(force_opt_in=True)


def errors_of(changes: dict[str, object], current: StoreSettings | None = None) -> dict[str, str]:
    with pytest.raises(SettingsInvalid) as caught:
        apply_changes(current or StoreSettings(), changes)
    return caught.value.errors


def subscribing(doi: mapping.DoubleOptIn) -> dict[str, object]:
    return mapping.ContactUpsert(email="a@b.co", consent=SUBSCRIBING, double_opt_in=doi).to_payload()


# -- mapping ---------------------------------------------------------------------------------------------


def test_email_id_style_sends_the_new_fields_and_none_of_the_older_ones() -> None:
    doi = mapping.DoubleOptIn(
        email_id=EMAIL_ID, language="DE", template_id="12", account_id="34", subject="Confirm"
    )
    body = subscribing(doi)
    assert body["useApiDoubleOptIn"] is True
    assert (body["doubleOptInEmailId"], body["doubleOptInLanguage"]) == (EMAIL_ID, "DE")
    assert not set(OLDER_KEYS) & set(body)


def test_older_style_sends_template_account_and_subject() -> None:
    body = subscribing(mapping.DoubleOptIn(language="PL", template_id="12", account_id="34", subject="Hi"))
    assert body["useApiDoubleOptIn"] is True and "doubleOptInEmailId" not in body
    assert [body[k] for k in OLDER_KEYS] == ["12", "34", "Hi"]
    bare = subscribing(mapping.DoubleOptIn(language="PL"))  # SALESmanago's own confirmation e-mail
    assert bare["useApiDoubleOptIn"] is True and not set(OLDER_KEYS) & set(bare)


def test_neither_style_is_sent_for_a_contact_not_subscribing_now() -> None:
    doi = mapping.DoubleOptIn(email_id=EMAIL_ID, language="EN")
    for flags in (ConsentFlags(), ConsentFlags(force_opt_out=True)):
        body = mapping.ContactUpsert(email="a@b.co", consent=flags, double_opt_in=doi).to_payload()
        assert not {"useApiDoubleOptIn", "doubleOptInEmailId", "doubleOptInLanguage"} & set(body)


# -- the plan: which style the settings choose ------------------------------------------------------------


def test_an_email_id_in_the_settings_chooses_the_current_style() -> None:
    settings = StoreSettings(
        double_opt_in_enabled=True,
        double_opt_in_email_id=EMAIL_ID,
        double_opt_in_template_id="12",
        double_opt_in_account_id="34",
        double_opt_in_subject="Confirm",
    )
    assert double_opt_in_for(settings, "EN") == mapping.DoubleOptIn(email_id=EMAIL_ID, language="EN")
    chosen = settings.model_copy(update={"double_opt_in_language": "DE"})
    assert double_opt_in_for(chosen, "EN") == mapping.DoubleOptIn(email_id=EMAIL_ID, language="DE")
    body = consent_plan_for(True, None, settings=chosen, language="EN", double_opt_in=True).apply(
        mapping.ContactUpsert(email="a@b.co")
    )
    assert body.to_payload()["doubleOptInEmailId"] == EMAIL_ID


def test_without_an_email_id_the_older_style_stays_as_it_was() -> None:
    settings = StoreSettings(
        double_opt_in_enabled=True,
        double_opt_in_template_id="12",
        double_opt_in_account_id="34",
        double_opt_in_subject="Confirm",
    )
    assert double_opt_in_for(settings, "EN") == mapping.DoubleOptIn(
        language="EN", template_id="12", account_id="34", subject="Confirm"
    )
    off = settings.model_copy(update={"double_opt_in_enabled": False, "double_opt_in_email_id": EMAIL_ID})
    assert double_opt_in_for(off, "EN") is None


# -- settings validation (what `smbc settings set` and the Account tab both call) ------------------------


def test_email_id_and_language_are_saved_normalised() -> None:
    updated = apply_changes(
        StoreSettings(),
        {"double_opt_in.email_id": f"  {EMAIL_ID.upper()} ", "double_opt_in.language": "pl"},
    )
    assert (updated.double_opt_in_email_id, updated.double_opt_in_language) == (EMAIL_ID.upper(), "PL")
    cleared = apply_changes(updated, {"double_opt_in.email_id": "", "double_opt_in.language": ""})
    assert (cleared.double_opt_in_email_id, cleared.double_opt_in_language) == ("", "")


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("double_opt_in.email_id", "12345", "36 characters"),
        ("double_opt_in.email_id", EMAIL_ID + "0", "36 characters"),
        ("double_opt_in.email_id", EMAIL_ID.replace("0", "g"), "36 characters"),
        ("double_opt_in.language", "polish", "two-letter"),
        ("double_opt_in.language", "p1", "two-letter"),
    ],
)
def test_a_wrong_email_id_or_language_is_refused_with_its_reason(key: str, value: str, says: str) -> None:
    changes = {"double_opt_in.email_id": EMAIL_ID, key: value}
    errors = errors_of(changes)
    assert set(errors) == {key} and says in errors[key]


def test_a_language_needs_an_email_id() -> None:
    errors = errors_of({"double_opt_in.language": "EN"})
    assert (
        set(errors) == {"double_opt_in.language"}
        and "confirmation e-mail ID" in errors["double_opt_in.language"]
    )
    saved = apply_changes(
        StoreSettings(), {"double_opt_in.email_id": EMAIL_ID, "double_opt_in.language": "EN"}
    )
    assert set(errors_of({"double_opt_in.email_id": ""}, saved)) == {"double_opt_in.language"}
    # Another tab's save is never refused over the double opt-in fields.
    stale = StoreSettings(double_opt_in_language="EN")
    assert apply_changes(stale, {"tags.purchase": "vip"}).tags_purchase == ["VIP"]


def test_both_styles_may_be_filled_in_at_once() -> None:
    both = {
        "double_opt_in.enabled": "true",
        "double_opt_in.email_id": EMAIL_ID,
        "double_opt_in.template_id": "12",
        "double_opt_in.account_id": "34",
        "double_opt_in.subject": "Confirm",
    }
    updated = apply_changes(StoreSettings(), both)
    assert updated.double_opt_in_email_id == EMAIL_ID and updated.double_opt_in_subject == "Confirm"
