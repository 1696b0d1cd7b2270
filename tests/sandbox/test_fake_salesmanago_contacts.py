"""Contacts on the fake SALESmanago: upsert, batch upsert, basic, hasContact, opt-in flags and DOI."""

from __future__ import annotations

from sm_helpers import *  # noqa: F403 - the fixtures
from sm_helpers import NOW_MS, NOW_S, SmSession, TestClient, sha1

from smbc.core.clock import FakeClock
from smbc.sandbox.salesmanago import FakeSalesmanago


def test_upsert_creates_a_contact_with_every_field(session: SmSession, fake: FakeSalesmanago) -> None:
    answer = session.upsert(
        "jan@example.com",
        contact={
            "name": "Jan Kowalski",
            "phone": "+48 600 100 200",
            "company": "Kowalski sp. z o.o.",
            "externalId": "42",
            "state": "CUSTOMER",
            "address": {"streetAddress": "Długa 1", "zipCode": "00-001", "city": "Warszawa", "country": "PL"},
        },
        tags=["BC_REGISTER"],
        properties={"channel": "1"},
        lang="PL",
        birthday="19900131",
        province="Mazowieckie",
        **{"async": False},
    )
    assert answer["success"] is True
    contact = fake.contact(fake.NORMAL.client_id, "JAN@example.com")
    assert contact["contactId"] == answer["contactId"]
    assert contact["name"] == "Jan Kowalski"
    assert contact["phone"] == "+48 600 100 200"
    assert contact["company"] == "Kowalski sp. z o.o."
    assert contact["externalId"] == "42"
    assert contact["address"]["city"] == "Warszawa"
    assert contact["tags"] == ["BC_REGISTER"]
    assert contact["properties"] == {"channel": "1"}
    assert contact["lang"] == "PL"
    assert contact["owner"] == fake.NORMAL.email
    assert contact["createdOn"] == NOW_MS
    # A new contact without forceOptIn is not subscribed.
    assert contact["optedIn"] is False
    assert contact["phoneOptedIn"] is False


def test_second_upsert_updates_the_same_contact_and_handles_tags(
    session: SmSession, fake: FakeSalesmanago
) -> None:
    first = session.upsert("ann@example.com", tags=["A", "B"], properties={"x": "1"})
    second = session.upsert(
        "ann@example.com", contact={"name": "Ann"}, tags=["C", "a"], removeTags=["b"], properties={"y": "2"}
    )
    assert second["contactId"] == first["contactId"]
    contact = fake.contact(fake.NORMAL.client_id, "ann@example.com")
    assert contact["name"] == "Ann"
    assert contact["tags"] == ["A", "C"]
    assert contact["properties"] == {"x": "1", "y": "2"}
    assert len(fake.contacts(fake.NORMAL.client_id)) == 1


def test_new_email_renames_the_contact(session: SmSession, fake: FakeSalesmanago) -> None:
    created = session.upsert("old@example.com")
    renamed = session.upsert("old@example.com", newEmail="new@example.com")
    assert renamed["contactId"] == created["contactId"]
    assert fake.contact(fake.NORMAL.client_id, "old@example.com") is None
    assert fake.contact(fake.NORMAL.client_id, "new@example.com")["contactId"] == created["contactId"]


def test_new_email_that_belongs_to_another_contact_is_refused(
    session: SmSession, fake: FakeSalesmanago
) -> None:
    session.upsert("one@example.com")
    session.upsert("two@example.com")
    answer = session.upsert("one@example.com", newEmail="two@example.com", contact={"name": "Changed"})
    assert answer == {"success": False, "message": ["Contact with email two@example.com already exists"]}
    assert fake.contact(fake.NORMAL.client_id, "one@example.com")["name"] is None


def test_force_opt_in_and_out_flags(session: SmSession, fake: FakeSalesmanago) -> None:
    cid = fake.NORMAL.client_id
    session.upsert("sub@example.com", forceOptIn=True, forcePhoneOptIn=True)
    assert fake.contact(cid, "sub@example.com")["optedIn"] is True
    assert fake.contact(cid, "sub@example.com")["phoneOptedIn"] is True
    # All flags false means "do not change".
    session.upsert("sub@example.com", forceOptIn=False, forceOptOut=False)
    assert fake.contact(cid, "sub@example.com")["optedIn"] is True
    session.upsert("sub@example.com", forceOptOut=True, forcePhoneOptOut=True)
    assert fake.contact(cid, "sub@example.com")["optedIn"] is False
    assert fake.contact(cid, "sub@example.com")["phoneOptedIn"] is False
    both = session.upsert("sub@example.com", forceOptIn=True, forceOptOut=True)
    assert both == {"success": False, "message": ["forceOptIn and forceOptOut cannot both be true"]}


def test_double_opt_in_sends_one_email_and_waits_for_confirmation(
    session: SmSession, fake: FakeSalesmanago
) -> None:
    cid = fake.NORMAL.client_id
    doi = {"useApiDoubleOptIn": True, "doubleOptInEmailId": "1" * 36, "doubleOptInLanguage": "EN"}
    session.upsert("doi@example.com", forceOptIn=True, **doi)
    contact = fake.contact(cid, "doi@example.com")
    assert contact["optedIn"] is False
    assert contact["doubleOptInPending"] is True
    emails = fake.confirmation_emails(cid)
    assert len(emails) == 1
    assert emails[0]["email"] == "doi@example.com"
    assert emails[0]["doubleOptInEmailId"] == "1" * 36
    assert emails[0]["doubleOptInLanguage"] == "EN"

    assert fake.confirm_double_opt_in(cid, "doi@example.com") is None  # no callback URL set
    assert fake.contact(cid, "doi@example.com")["optedIn"] is True
    # Already opted in: no second confirmation e-mail.
    session.upsert("doi@example.com", forceOptIn=True, **doi)
    assert len(fake.confirmation_emails(cid)) == 1


def test_double_opt_in_is_skipped_for_a_contact_already_opted_in(
    session: SmSession, fake: FakeSalesmanago
) -> None:
    cid = fake.NORMAL.client_id
    fake.add_contact(cid, "known@example.com", opted_in=True)
    session.upsert("known@example.com", forceOptIn=True, useApiDoubleOptIn=True, doubleOptInEmailId="e" * 36)
    assert fake.confirmation_emails(cid) == []
    assert fake.contact(cid, "known@example.com")["optedIn"] is True


def test_old_style_double_opt_in_attributes_are_recorded(session: SmSession, fake: FakeSalesmanago) -> None:
    session.upsert(
        "legacy@example.com",
        forceOptIn=True,
        useApiDoubleOptIn=True,
        apiDoubleOptInEmailTemplateId="tpl-1",
        apiDoubleOptInEmailAccountId="acc-1",
        apiDoubleOptInEmailSubject="Please confirm",
    )
    [email] = fake.confirmation_emails(fake.NORMAL.client_id)
    assert (email["templateId"], email["accountId"], email["subject"]) == ("tpl-1", "acc-1", "Please confirm")


def test_invalid_contacts_are_refused_and_change_nothing(session: SmSession, fake: FakeSalesmanago) -> None:
    cases = [
        ({"contact": {"email": "not-an-email"}}, "contact.email is not a valid email address"),
        ({"properties": {"note": "x" * 256}}, "properties.note is too long"),
        ({"birthday": "1990-01-31"}, "birthday must be YYYYMMDD"),
        ({"tags": ["T" * 256]}, "is too long"),
        ({"contact": {"email": "ok@example.com", "state": "VIP"}}, "contact.state must be one of"),
        ({"forceOptIn": "yes"}, "forceOptIn must be true or false"),
    ]
    for body, expected in cases:
        contact = {"email": "ok@example.com", **body.pop("contact", {})}
        answer = session.call("/api/contact/upsert", contact=contact, **body)
        assert answer["success"] is False, body
        assert any(expected in m for m in answer["message"]), (answer, expected)
    assert session.call("/api/contact/upsert")["message"] == ["contact is required"]
    assert fake.contacts(fake.NORMAL.client_id) == []


def test_owner_must_be_a_user_of_the_account(session: SmSession, fake: FakeSalesmanago) -> None:
    answer = session.upsert("x@example.com", owner="stranger@example.com")
    assert answer == {
        "success": False,
        "message": ["Owner stranger@example.com is not a user of this account"],
    }
    fake.remove_owner(fake.NORMAL.client_id, "sales@sandbox.test")
    assert session.upsert("x@example.com", owner="sales@sandbox.test")["success"] is False
    assert "sales@sandbox.test" not in session.call("/api/user/listByClient")["users"]
    assert session.upsert("x@example.com", owner="support@sandbox.test")["success"] is True
    assert fake.contact(fake.NORMAL.client_id, "x@example.com")["owner"] == "support@sandbox.test"


def test_batch_upsert_answers_a_request_id_and_stores_the_contacts_after_a_delay(
    session: SmSession, fake: FakeSalesmanago, clock: FakeClock
) -> None:
    details = [
        {
            "contact": {"email": f"c{i}@example.com", "name": f"C {i}"},
            "tags": ["BC_EXPORT"],
            "forceOptIn": i == 0,
        }
        for i in range(3)
    ]
    answer = session.call("/api/contact/batchupsertv2", upsertDetails=details, useApiDoubleOptIn=False)
    assert answer["success"] is True and answer["requestId"]
    assert "contactIds" not in answer  # asynchronous: no ids, the contacts come later
    assert fake.contacts(fake.NORMAL.client_id) == []
    assert fake.pending_contacts(fake.NORMAL.client_id) == 3
    assert session.call("/api/contact/basic", email=["c0@example.com"])["contacts"] == []

    clock.advance(fake.batch_delay_s)
    stored = {c["email"]: c for c in fake.contacts(fake.NORMAL.client_id)}
    assert set(stored) == {"c0@example.com", "c1@example.com", "c2@example.com"}
    assert fake.pending_contacts(fake.NORMAL.client_id) == 0
    assert stored["c0@example.com"]["optedIn"] is True
    assert stored["c1@example.com"]["optedIn"] is False
    assert stored["c2@example.com"]["tags"] == ["BC_EXPORT"]


def test_a_pending_batch_is_seen_by_the_api_once_its_delay_passed(
    session: SmSession, fake: FakeSalesmanago, clock: FakeClock
) -> None:
    session.call("/api/contact/batchupsertv2", upsertDetails=[{"contact": {"email": "late@example.com"}}])
    clock.advance(fake.batch_delay_s - 0.5)
    assert session.call("/api/contact/hasContact", email="late@example.com")["result"] is False
    clock.advance(0.5)
    assert session.call("/api/contact/hasContact", email="late@example.com")["result"] is True


def test_pending_batches_can_be_applied_at_once_and_a_zero_delay_applies_them_immediately(
    session: SmSession, fake: FakeSalesmanago
) -> None:
    session.call("/api/contact/batchupsertv2", upsertDetails=[{"contact": {"email": "a@example.com"}}])
    assert fake.apply_pending_batches() == 1
    assert fake.contact(fake.NORMAL.client_id, "a@example.com") is not None
    fake.batch_delay_s = 0
    session.call("/api/contact/batchupsertv2", upsertDetails=[{"contact": {"email": "b@example.com"}}])
    assert fake.pending_contacts(fake.NORMAL.client_id) == 0
    assert fake.contact(fake.NORMAL.client_id, "b@example.com") is not None


def test_batch_upsert_with_one_bad_item_stores_nothing(session: SmSession, fake: FakeSalesmanago) -> None:
    details = [{"contact": {"email": "good@example.com"}}, {"contact": {"email": "bad"}}]
    answer = session.call("/api/contact/batchupsertv2", upsertDetails=details)
    assert answer["success"] is False
    assert answer["message"] == ["[1] contact.email is not a valid email address: 'bad'"]
    assert fake.apply_pending_batches() == 0 and fake.contacts(fake.NORMAL.client_id) == []
    assert session.call("/api/contact/batchupsertv2", upsertDetails=[])["success"] is False
    too_many = [{"contact": {"email": f"n{i}@example.com"}} for i in range(1001)]
    assert session.call("/api/contact/batchupsertv2", upsertDetails=too_many)["success"] is False


def test_basic_and_has_contact(session: SmSession, fake: FakeSalesmanago) -> None:
    cid = fake.NORMAL.client_id
    fake.add_contact(
        cid, "in@example.com", opted_in=True, name="In", phone_opted_in=True, birthday="19850704"
    )
    fake.add_contact(cid, "out@example.com", opted_in=False)
    answer = session.call(
        "/api/contact/basic", email=["in@example.com", "out@example.com", "none@example.com"]
    )
    assert answer["success"] is True
    by_email = {c["email"]: c for c in answer["contacts"]}
    assert set(by_email) == {"in@example.com", "out@example.com"}
    assert by_email["in@example.com"]["optedOut"] is False
    assert by_email["in@example.com"]["optedOutPhone"] is False
    assert by_email["in@example.com"]["name"] == "In"
    assert by_email["in@example.com"]["birthdayYear"] == 1985
    assert by_email["out@example.com"]["optedOut"] is True
    assert session.call("/api/contact/basic", email="in@example.com")["success"] is False

    has = session.call("/api/contact/hasContact", email="in@example.com")
    assert has["result"] is True
    assert has["contactId"] == fake.contact(cid, "in@example.com")["contactId"]
    assert session.call("/api/contact/hasContact", email="none@example.com")["result"] is False


def test_accounts_do_not_share_contacts(session: SmSession, fake: FakeSalesmanago, http: TestClient) -> None:
    session.upsert("mine@example.com")
    other = fake.TWO_FACTOR
    body = {
        "clientId": other.client_id,
        "apiKey": "k",
        "sha": sha1("k" + other.client_id + other.api_secret),
        "requestTime": NOW_S,
        "owner": other.email,
        "email": ["mine@example.com"],
    }
    assert http.post("/api/contact/basic", json=body).json()["contacts"] == []
    assert fake.contacts(other.client_id) == []


def test_delete_contact(session: SmSession, fake: FakeSalesmanago) -> None:
    cid = fake.NORMAL.client_id
    contact_id = session.upsert("gone@example.com")["contactId"]
    assert session.call("/api/contact/delete", email="gone@example.com") == {"success": True, "message": []}
    assert fake.contact(cid, "gone@example.com") is None
    assert [c["contactId"] for c in fake.deleted_contacts(cid)] == [contact_id]
    again = session.call("/api/contact/delete", email="gone@example.com")
    assert again == {"success": False, "message": ["Contact not found: gone@example.com"]}
