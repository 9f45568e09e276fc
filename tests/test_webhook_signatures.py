"""The signature matrix of inbound vendor webhooks: what a vendor's integrator sends, and
whether pane lets it in. Expected signatures are computed here from the spec with ``hmac``,
never with pane's own ``sign``, so a mistake in the scheme cannot agree with itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from pane.connectors.webhooks import (
    HmacSha256,
    SignatureRefused,
    StandardWebhooks,
    Verified,
    new_secret,
)

# One fixed "now" for the module; the standardwebhooks library reads the real clock, which
# stays well inside five minutes of it while the tests run.
NOW = float(int(time.time()))
STAMP = int(NOW)
SECRET = new_secret()
OLD_SECRET = new_secret()
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = b'{"type":"lead.created","data":{"id":"L-1","name":"Ren\xc3\xa9e"}}'
STANDARD = StandardWebhooks()

Headers = dict[str, str]


def v1_by_hand(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """A ``v1,<base64>`` entry as the spec defines it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def delivery(
    *,
    secret: str = SECRET,
    webhook_id: str = MSG_ID,
    timestamp: int = STAMP,
    body: bytes = BODY,
) -> Headers:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": v1_by_hand(secret, webhook_id, timestamp, body),
    }


def refusal(
    headers: Headers,
    body: bytes = BODY,
    *,
    secrets: Sequence[str] = (SECRET,),
    now: float = NOW,
    scheme: StandardWebhooks | HmacSha256 = STANDARD,
) -> str:
    """The reason pane gives; any exception other than SignatureRefused fails the test."""
    with pytest.raises(SignatureRefused) as refused:
        scheme.verify(list(secrets), headers, body, now=now)
    assert refused.value.reason
    return refused.value.reason


def test_new_secret_is_whsec_and_32_fresh_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_a_signature_computed_from_the_spec_verifies_and_gives_the_webhook_id() -> None:
    assert STANDARD.verify([SECRET], delivery(), BODY, now=NOW) == Verified(MSG_ID)


def test_sign_writes_the_headers_the_spec_describes() -> None:
    assert STANDARD.sign(SECRET, BODY, webhook_id=MSG_ID, timestamp=STAMP) == delivery()


def test_a_body_that_is_not_utf8_verifies_over_its_exact_bytes() -> None:
    body = b"\xff\xfe\x00binary\x80"
    assert STANDARD.verify([SECRET], delivery(body=body), body, now=NOW) == Verified(MSG_ID)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b: b"[" + b[1:], id="first-byte"),
        pytest.param(lambda b: b[:-1] + b"]", id="last-byte"),
        pytest.param(lambda b: b.replace(b"L-1", b"L-2"), id="middle-byte"),
        pytest.param(lambda b: b + b"\n", id="trailing-newline"),
        pytest.param(lambda b: b.replace(b'":', b'": '), id="reserialized-json"),
    ],
)
def test_a_changed_body_is_refused(tamper: Callable[[bytes], bytes]) -> None:
    assert "no webhook-signature entry matches" in refusal(delivery(), tamper(BODY))


def test_the_signature_binds_the_id_and_the_timestamp() -> None:
    # A captured delivery replayed under a new id or a fresh timestamp must not verify.
    signed = delivery()
    assert "matches" in refusal({**signed, "webhook-id": "msg_other"})
    assert "matches" in refusal({**signed, "webhook-timestamp": str(STAMP + 1)})


@pytest.mark.parametrize("offset", [-299, 299, 0])
def test_a_timestamp_within_five_minutes_passes(offset: int) -> None:
    headers = delivery(timestamp=STAMP + offset)
    assert STANDARD.verify([SECRET], headers, BODY, now=NOW) == Verified(MSG_ID)


@pytest.mark.parametrize("offset", [-360, 360], ids=["6-minutes-old", "6-minutes-ahead"])
def test_a_timestamp_beyond_five_minutes_is_refused(offset: int) -> None:
    assert "more than 5 minutes" in refusal(delivery(timestamp=STAMP + offset))


def _good() -> str:
    return delivery()["webhook-signature"]


def _wrong() -> str:
    return delivery(secret=new_secret())["webhook-signature"]


@pytest.mark.parametrize(
    "listed",
    [
        pytest.param(lambda: f"v1,{_wrong()[3:]} {_good()}", id="second-entry-matches"),
        pytest.param(lambda: f"{_good()} v1,{_wrong()[3:]}", id="first-entry-matches"),
        pytest.param(lambda: f"v2,AAAA {_good()}", id="unknown-version-skipped"),
        pytest.param(lambda: f"{_good()} v1a,not-base64!", id="unknown-version-not-parsed"),
    ],
)
def test_any_valid_v1_entry_of_the_list_passes(listed: Callable[[], str]) -> None:
    headers = {**delivery(), "webhook-signature": listed()}
    assert STANDARD.verify([SECRET], headers, BODY, now=NOW) == Verified(MSG_ID)


def test_a_list_without_a_v1_entry_is_refused_even_if_a_v2_entry_holds_the_right_mac() -> None:
    headers = {**delivery(), "webhook-signature": "v2," + _good()[3:]}
    assert "no v1 entry" in refusal(headers)


@pytest.mark.parametrize(
    ("signed_with", "given"),
    [
        pytest.param(OLD_SECRET, [SECRET, OLD_SECRET], id="old-while-both"),
        pytest.param(SECRET, [SECRET, OLD_SECRET], id="new-while-both"),
        pytest.param(SECRET, [OLD_SECRET, SECRET], id="new-listed-second"),
    ],
)
def test_during_rotation_either_secret_passes(signed_with: str, given: list[str]) -> None:
    headers = delivery(secret=signed_with)
    assert STANDARD.verify(given, headers, BODY, now=NOW) == Verified(MSG_ID)


@pytest.mark.parametrize(
    ("signed_with", "given"),
    [
        pytest.param(OLD_SECRET, [SECRET], id="old-after-rotation"),
        pytest.param(new_secret(), [SECRET, OLD_SECRET], id="wrong-secret"),
        pytest.param(SECRET, [], id="link-without-secrets"),
    ],
)
def test_a_secret_the_link_does_not_hold_is_refused(signed_with: str, given: list[str]) -> None:
    reason = refusal(delivery(secret=signed_with), secrets=given)
    assert "no webhook-signature entry matches" in reason
    assert SECRET not in reason
    assert OLD_SECRET not in reason


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
@pytest.mark.parametrize("absent", ["missing", "empty"])
def test_a_missing_header_is_refused_by_name(name: str, absent: str) -> None:
    headers = delivery()
    if absent == "missing":
        del headers[name]
    else:
        headers[name] = ""
    assert f"the {name} header is missing" in refusal(headers)


LONG = "A" * 10_000
ARABIC_INDIC_DIGITS = "\u0661\u0667" + "\u0660" * 8  # isdigit() says yes, int() reads them


@pytest.mark.parametrize(
    ("header", "value", "said"),
    [
        pytest.param("webhook-signature", "v1", "`<version>,<base64 signature>`", id="no-comma"),
        pytest.param(
            "webhook-signature",
            f"{_good()} v1",
            "`<version>,<base64 signature>`",
            id="good-then-no-comma",
        ),
        pytest.param(
            "webhook-signature",
            "," + _good()[3:],
            "`<version>,<base64 signature>`",
            id="empty-version",
        ),
        pytest.param("webhook-signature", "v1,not base64!", "not base64", id="not-base64"),
        pytest.param("webhook-signature", "v1,#$%&", "not base64", id="base64-symbols"),
        pytest.param("webhook-signature", "v1,AAA", "not base64", id="bad-padding"),
        pytest.param("webhook-signature", "v1,ÄÖÜ", "not base64", id="non-ascii"),
        pytest.param("webhook-signature", "v1," + LONG, "too long", id="signature-10000-chars"),
        pytest.param("webhook-signature", " ".join([_good()] * 100), "too long", id="100-entries"),
        pytest.param("webhook-id", LONG, "webhook-id is not an id", id="id-10000-chars"),
        pytest.param("webhook-id", "msg\n1", "webhook-id is not an id", id="id-with-newline"),
        pytest.param(
            "webhook-timestamp", "1" * 10_000, "not a Unix time", id="timestamp-10000-digits"
        ),
        pytest.param("webhook-timestamp", "soon", "not a Unix time", id="timestamp-word"),
        pytest.param("webhook-timestamp", f"-{STAMP}", "not a Unix time", id="timestamp-negative"),
        pytest.param("webhook-timestamp", str(10**30), "not a Unix time", id="timestamp-10**30"),
        pytest.param(
            "webhook-timestamp", f" {STAMP}", "not a Unix time", id="timestamp-leading-space"
        ),
        pytest.param(
            "webhook-timestamp", f"{STAMP} ", "not a Unix time", id="timestamp-trailing-space"
        ),
        pytest.param("webhook-timestamp", f"{STAMP}.5", "not a Unix time", id="timestamp-fraction"),
        pytest.param(
            "webhook-timestamp",
            ARABIC_INDIC_DIGITS,
            "not a Unix time",
            id="timestamp-arabic-indic-digits",
        ),
    ],
)
def test_a_malformed_header_is_refused_with_its_reason(header: str, value: str, said: str) -> None:
    assert said in refusal({**delivery(), header: value})


def test_a_signature_made_by_the_standardwebhooks_library_verifies() -> None:
    library = pytest.importorskip("standardwebhooks")
    moment = datetime.fromtimestamp(NOW, UTC)
    signature = library.Webhook(SECRET).sign(MSG_ID, moment, BODY.decode())
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(STAMP),
        "webhook-signature": signature,
    }
    assert STANDARD.verify([SECRET], headers, BODY, now=NOW) == Verified(MSG_ID)


def test_a_signature_made_by_pane_verifies_with_the_standardwebhooks_library() -> None:
    library = pytest.importorskip("standardwebhooks")
    # the library checks the timestamp against its own clock
    headers = STANDARD.sign(SECRET, BODY, webhook_id=MSG_ID, timestamp=int(time.time()))
    assert library.Webhook(SECRET).verify(BODY, headers) == {
        "type": "lead.created",
        "data": {"id": "L-1", "name": "Renée"},
    }
    # and the library, like pane, refuses it under another secret
    with pytest.raises(library.WebhookVerificationError):
        library.Webhook(OLD_SECRET).verify(BODY, headers)


# HmacSha256: GitHub's X-Hub-Signature-256, keyed by the whole secret text.
GITHUB = HmacSha256(header="X-Hub-Signature-256", prefix="sha256=", id_header="X-GitHub-Delivery")
DELIVERY_ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def _mac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()


def github(secret: str = SECRET, body: bytes = BODY) -> Headers:
    return {
        "x-hub-signature-256": "sha256=" + _mac(secret, body).hex(),
        "x-github-delivery": DELIVERY_ID,
    }


def test_a_github_style_hex_signature_verifies_and_takes_the_id_header() -> None:
    assert GITHUB.verify([SECRET], github(), BODY, now=NOW) == Verified(DELIVERY_ID)
    assert GITHUB.sign(SECRET, BODY, webhook_id=DELIVERY_ID, timestamp=STAMP) == github()


def test_hmac_key_is_the_whole_secret_text_not_its_decoded_part() -> None:
    decoded_key = base64.b64decode(SECRET.removeprefix("whsec_"))
    headers = {
        **github(),
        "x-hub-signature-256": "sha256=" + hmac.new(decoded_key, BODY, hashlib.sha256).hexdigest(),
    }
    assert "does not match" in refusal(headers, scheme=GITHUB)


def test_a_base64_signature_without_id_header_is_identified_by_the_body_digest() -> None:
    scheme = HmacSha256(header="X-Signature", encoding="base64")
    headers = {"x-signature": base64.b64encode(_mac(SECRET, BODY)).decode()}
    assert scheme.sign(SECRET, BODY, webhook_id="ignored", timestamp=STAMP) == headers
    first = scheme.verify([SECRET], headers, BODY, now=NOW)
    again = scheme.verify([SECRET], dict(headers), BODY, now=NOW + 3600)
    assert first == again == Verified("sha256:" + hashlib.sha256(BODY).hexdigest())
    other = b'{"type":"lead.created","data":{"id":"L-2"}}'
    signed_other = {"x-signature": base64.b64encode(_mac(SECRET, other)).decode()}
    assert scheme.verify([SECRET], signed_other, other, now=NOW) != first


@pytest.mark.parametrize(
    ("signed_with", "given", "passes"),
    [
        pytest.param(OLD_SECRET, [SECRET, OLD_SECRET], True, id="old-while-both"),
        pytest.param(OLD_SECRET, [SECRET], False, id="old-after-rotation"),
        pytest.param(new_secret(), [SECRET], False, id="wrong-secret"),
    ],
)
def test_hmac_rotation(signed_with: str, given: list[str], passes: bool) -> None:
    headers = github(secret=signed_with)
    if passes:
        assert GITHUB.verify(given, headers, BODY, now=NOW) == Verified(DELIVERY_ID)
    else:
        assert "does not match a secret" in refusal(headers, secrets=given, scheme=GITHUB)


def test_hmac_refuses_a_tampered_body() -> None:
    assert "does not match" in refusal(github(), BODY + b" ", scheme=GITHUB)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        pytest.param(_mac(SECRET, BODY).hex(), "is not `sha256=<signature>`", id="no-prefix"),
        pytest.param("sha1=" + _mac(SECRET, BODY).hex(), "is not `sha256=", id="other-prefix"),
        pytest.param("sha256=zz" + "0" * 62, "is not hex", id="not-hex"),
        pytest.param("sha256=" + _mac(SECRET, BODY).hex()[:-1], "is not hex", id="odd-length"),
        pytest.param("sha256=ÄÖ", "is not hex", id="non-ascii"),
        pytest.param("sha256=" + "a" * 10_000, "is not `sha256=", id="10000-chars"),
        pytest.param("sha256=", "does not match", id="empty-digest"),
    ],
)
def test_hmac_refuses_a_malformed_signature(value: str, said: str) -> None:
    headers = {**github(), "x-hub-signature-256": value}
    assert said in refusal(headers, scheme=GITHUB)


def test_hmac_refuses_a_malformed_base64_signature() -> None:
    scheme = HmacSha256(header="X-Signature", encoding="base64")
    assert "is not base64" in refusal({"x-signature": "not base64!"}, scheme=scheme)


@pytest.mark.parametrize("name", ["x-hub-signature-256", "x-github-delivery"])
def test_hmac_refuses_a_missing_header(name: str) -> None:
    headers = github()
    del headers[name]
    assert f"the {name} header is missing" in refusal(headers, scheme=GITHUB)
