"""The subscriber web app over HTTP: double opt-in, RFC 8058 one-click unsubscribe, tokens."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from support import self_signed_certificate, server_tls
from web_support import SECRET, confirmation_link, make_settings, smtp_sink

from briefcast import subscribers, tokens
from briefcast.db import get_engine
from briefcast.web import links
from briefcast.web.app import create_app

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def sink():
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def settings(tmp_path, monkeypatch, sink):
    return make_settings(tmp_path, monkeypatch, smtp_port=sink.port)


@pytest.fixture
def engine(settings):
    return get_engine(settings.database_url)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def status(engine, address):
    found = subscribers.get(engine, address)
    return found.status if found else None


def unsubscribe_path(settings, address):
    url = subscribers.recipient(settings, address, "2026-11-20").unsubscribe_url
    return url.removeprefix(settings.publication.web_base_url)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


# -- subscribe and confirm ---------------------------------------------------------


def test_subscribe_sends_one_confirmation_mail_and_waits_for_the_link(client, sink, engine):
    page = client.get("/")
    assert page.status_code == 200 and 'action="/subscribe"' in page.text

    answer = client.post("/subscribe", data={"email": "Reader@Example.org", "name": "Rea Der"})

    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert status(engine, "reader@example.org") == "pending"
    [mail] = sink.messages_to("Reader@example.org")
    message = mail.message
    assert message["Subject"] == "Confirm your subscription to The Test Gazette"
    assert message["From"].addresses[0].addr_spec == "brief@gazette.example"
    link = confirmation_link(message)
    assert link.startswith("http://testserver/confirm/")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f'href="{link}"' in html


def test_following_the_link_shows_a_button_and_only_the_button_confirms(client, sink, engine):
    client.post("/subscribe", data={"email": "reader@example.org"})
    link = path_of(confirmation_link(sink.messages_to("reader@example.org")[0].message))

    shown = client.get(link)
    assert shown.status_code == 200 and 'method="post"' in shown.text
    assert "reader@example.org" in shown.text
    client.get(link)  # a mail scanner opening the link again
    assert status(engine, "reader@example.org") == "pending"

    confirmed = client.post(link)
    assert confirmed.status_code == 200 and "You're subscribed" in confirmed.text
    assert status(engine, "reader@example.org") == "active"
    assert [
        r.email
        for r in subscribers.recipients_for(engine, client.app.state.web.settings, "2026-11-20")
    ] == ["reader@example.org"]


def test_the_answer_never_tells_whether_an_address_is_known(client, sink, engine):
    subscribers.add(engine, "member@example.org", status="active")
    subscribers.add(engine, "bounced@example.org", status="bounced")

    pages = {
        address: client.post("/subscribe", data={"email": address}).text.replace(address, "X")
        for address in ("member@example.org", "bounced@example.org", "new@example.org")
    }

    assert len(set(pages.values())) == 1
    assert [r.rcpt_tos for r in sink.received] == [["new@example.org"]]
    assert status(engine, "member@example.org") == "active"
    assert status(engine, "bounced@example.org") == "bounced"


def test_an_invalid_address_is_refused_with_the_reason_and_escaped(client, sink, engine):
    answer = client.post("/subscribe", data={"email": "<script>alert(1)</script>@nowhere"})

    assert answer.status_code == 400
    assert "<script>alert(1)" not in answer.text and "&lt;script&gt;" in answer.text
    assert 'role="alert"' in answer.text
    assert subscribers.list_subscribers(engine) == [] and sink.received == []


def test_a_second_request_soon_after_sends_no_second_mail(client, sink):
    for _ in range(3):
        assert client.post("/subscribe", data={"email": "eager@example.org"}).status_code == 200
    assert len(sink.messages_to("eager@example.org")) == 1


def test_leaving_and_coming_back_takes_a_fresh_confirmation(client, sink, engine, settings):
    subscribers.add(engine, "back@example.org", status="active")
    old_link = f"/confirm/{links.confirm_token(SECRET, 'back@example.org', time.time() - 60)}"
    client.post(unsubscribe_path(settings, "back@example.org"), data=ONE_CLICK)

    client.post("/subscribe", data={"email": "back@example.org"})
    assert status(engine, "back@example.org") == "unsubscribed"  # still nothing sent to them

    refused = client.post(old_link)  # a link from before the unsubscribe doesn't undo it
    assert refused.status_code == 409
    assert status(engine, "back@example.org") == "unsubscribed"

    fresh = path_of(confirmation_link(sink.messages_to("back@example.org")[0].message))
    assert client.post(fresh).status_code == 200
    assert status(engine, "back@example.org") == "active"


@pytest.mark.parametrize("suppressed", ["bounced", "complained"])
def test_bounced_and_complained_addresses_stay_suppressed(client, sink, engine, suppressed):
    subscribers.add(engine, "gone@example.org", status=suppressed)
    link = f"/confirm/{links.confirm_token(SECRET, 'gone@example.org')}"

    client.post("/subscribe", data={"email": "gone@example.org"})
    answer = client.post(link)

    assert sink.received == []
    assert answer.status_code == 409
    assert status(engine, "gone@example.org") == suppressed


def test_an_expired_or_forged_confirmation_link_is_refused(client, engine):
    subscribers.add(engine, "late@example.org", status="pending")
    expired = links.confirm_token(SECRET, "late@example.org", time.time() - 8 * 24 * 3600)
    forged = links.confirm_token("not-our-secret", "late@example.org")

    for token in (expired, forged):
        assert client.get(f"/confirm/{token}").status_code == 400
        assert client.post(f"/confirm/{token}").status_code == 400
    assert status(engine, "late@example.org") == "pending"


# -- one-click unsubscribe -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_at_once_with_200_and_no_redirect(
    client, engine, settings, encoding
):
    subscribers.add(engine, "leaving@example.org", status="active")
    path = unsubscribe_path(settings, "leaving@example.org")
    if encoding == "urlencoded":
        answer = client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
    else:
        answer = client.post(
            path, files={"List-Unsubscribe": (None, "One-Click")}, follow_redirects=False
        )
        assert answer.request.headers["content-type"].startswith("multipart/form-data")

    assert answer.status_code == 200 and "location" not in answer.headers
    assert status(engine, "leaving@example.org") == "unsubscribed"
    assert subscribers.recipients_for(engine, settings, "2026-11-21") == []


def test_opening_the_unsubscribe_link_shows_a_button_and_changes_nothing(client, engine, settings):
    subscribers.add(engine, "reader@example.org", status="active")
    path = unsubscribe_path(settings, "reader@example.org")

    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200
        assert 'method="post"' in page.text
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert status(engine, "reader@example.org") == "active"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"

    client.post(path, data=ONE_CLICK)
    assert "You're unsubscribed" in client.get(path).text  # no second button


def test_a_tampered_token_is_refused_and_changes_nothing(client, engine, settings):
    subscribers.add(engine, "reader@example.org", status="active")
    path = unsubscribe_path(settings, "reader@example.org")
    body, mac = path.removeprefix("/u/").split(".")
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    tampered = [
        f"/u/{body}.{flipped}",
        f"/u/{body}",
        f"/u/{tokens.sign('guessed-secret', 'unsubscribe', 'reader@example.org')}",
        f"/u/{links.confirm_token(SECRET, 'reader@example.org')}",  # right key, wrong purpose
    ]
    for bad in tampered:
        assert client.get(bad).status_code == 400
        answer = client.post(bad, data=ONE_CLICK)
        assert answer.status_code == 400 and "Nothing was changed" in answer.text
    assert status(engine, "reader@example.org") == "active"


def test_a_token_for_one_address_cannot_unsubscribe_another(client, engine, settings):
    subscribers.add(engine, "a@example.org", status="active")
    subscribers.add(engine, "b@example.org", status="active")
    a_body, a_mac = unsubscribe_path(settings, "a@example.org").removeprefix("/u/").split(".")
    b_body, _ = unsubscribe_path(settings, "b@example.org").removeprefix("/u/").split(".")

    assert client.post(f"/u/{b_body}.{a_mac}", data=ONE_CLICK).status_code == 400
    assert status(engine, "b@example.org") == "active"

    assert client.post(f"/u/{a_body}.{a_mac}", data=ONE_CLICK).status_code == 200
    assert status(engine, "a@example.org") == "unsubscribed"
    assert status(engine, "b@example.org") == "active"


def test_a_post_without_the_one_click_body_changes_nothing(client, engine, settings):
    subscribers.add(engine, "reader@example.org", status="active")
    path = unsubscribe_path(settings, "reader@example.org")

    assert client.post(path).status_code == 400
    assert client.post(path, data={"List-Unsubscribe": "yes"}).status_code == 400
    assert status(engine, "reader@example.org") == "active"


def test_unsubscribing_an_address_not_on_the_list_keeps_it_off(client, engine, settings):
    # a test-send recipient, say: whoever holds a link we signed can opt out
    path = unsubscribe_path(settings, "tester@example.org")

    assert client.post(path, data=ONE_CLICK).status_code == 200
    assert status(engine, "tester@example.org") == "unsubscribed"
    report_file = settings.data_dir / "import.csv"
    report_file.write_text("email\ntester@example.org\n")
    assert subscribers.import_csv(engine, report_file).imported == 0


def test_a_suppressed_address_stays_as_it_is_after_unsubscribing(client, engine, settings):
    subscribers.add(engine, "spam@example.org", status="complained")
    assert client.post(unsubscribe_path(settings, "spam@example.org"), data=ONE_CLICK).is_success
    assert status(engine, "spam@example.org") == "complained"


def test_a_mail_server_outage_is_logged_without_secrets(tmp_path, monkeypatch, caplog):
    from fakes.smtp_sink import free_port

    settings = make_settings(tmp_path, monkeypatch, smtp_port=free_port())  # nobody listening
    with TestClient(create_app(settings)) as client, caplog.at_level("ERROR", "briefcast.web"):
        answer = client.post("/subscribe", data={"email": "reader@example.org"})

    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert "confirmation mail to reader@example.org failed" in caplog.text
    assert SECRET not in caplog.text and "/confirm/" not in caplog.text
    engine = get_engine(settings.database_url)
    assert status(engine, "reader@example.org") == "pending"


def test_confirmation_goes_through_starttls_with_login(tmp_path, monkeypatch):
    certificate = self_signed_certificate(tmp_path)
    monkeypatch.setenv("WEB_SMTP_PASSWORD", "pa55-word-xyz")
    options = {"tls_context": server_tls(certificate), "credentials": ("brief", "pa55-word-xyz")}
    with smtp_sink(**options) as sink:
        settings = make_settings(
            tmp_path,
            monkeypatch,
            smtp_port=sink.port,
            smtp_extra=(
                'security = "starttls"\nusername = "brief"\n'
                f'password = {{ env = "WEB_SMTP_PASSWORD" }}\nca_file = "{certificate[0]}"\n'
                'from_email = "confirm@gazette.example"'
            ),
        )
        with TestClient(create_app(settings)) as client:
            client.post("/subscribe", data={"email": "reader@example.org"})

        [mail] = sink.messages_to("reader@example.org")
        assert sink.logins == ["brief"]
        assert mail.message["From"].addresses[0].addr_spec == "confirm@gazette.example"
        assert confirmation_link(mail.message).startswith("http://testserver/confirm/")


def test_confirmation_goes_through_implicit_tls(tmp_path, monkeypatch):
    # (aiosmtpd does not offer AUTH on implicit TLS, so no login here)
    certificate = self_signed_certificate(tmp_path)
    with smtp_sink(ssl_context=server_tls(certificate)) as sink:
        settings = make_settings(
            tmp_path,
            monkeypatch,
            smtp_port=sink.port,
            smtp_extra=f'security = "tls"\nca_file = "{certificate[0]}"',
        )
        with TestClient(create_app(settings)) as client:
            client.post("/subscribe", data={"email": "reader@example.org"})

        assert len(sink.messages_to("reader@example.org")) == 1


def test_an_untrusted_mail_server_certificate_is_refused(tmp_path, monkeypatch, caplog):
    certificate = self_signed_certificate(tmp_path)
    with smtp_sink(tls_context=server_tls(certificate)) as sink:
        settings = make_settings(
            tmp_path, monkeypatch, smtp_port=sink.port, smtp_extra='security = "starttls"'
        )
        with TestClient(create_app(settings)) as client, caplog.at_level("ERROR"):
            client.post("/subscribe", data={"email": "reader@example.org"})

        assert sink.received == []
        assert "certificate verify failed" in caplog.text


def test_the_whole_round_trip_on_postgresql(tmp_path, monkeypatch, sink, postgres_url):
    settings = make_settings(
        tmp_path,
        monkeypatch,
        smtp_port=sink.port,
        database_url=postgres_url,
        web_extra="allow_unsigned_webhook = true",
    )
    engine = get_engine(settings.database_url)
    with TestClient(create_app(settings)) as client:
        client.post("/subscribe", data={"email": "reader@example.org"})
        link = path_of(confirmation_link(sink.messages_to("reader@example.org")[0].message))
        client.post(link)
        assert status(engine, "reader@example.org") == "active"

        client.post(unsubscribe_path(settings, "reader@example.org"), data=ONE_CLICK)
        assert status(engine, "reader@example.org") == "unsubscribed"

        subscribers.add(engine, "spam@example.org", status="active")
        events = [{"email": "spam@example.org", "event": "spamreport", "timestamp": 1}]
        assert client.post("/webhooks/sendgrid", json=events).json() == {"received": 1}
        assert status(engine, "spam@example.org") == "complained"
