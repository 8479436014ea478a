"""C2SP checkpoints and signed notes: the specs' examples, round trips, and malformed input refused."""

from __future__ import annotations

import base64
import hashlib

import pytest

from obhut.audit import merkle, notes

ROOT = merkle.root([merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(7)])  # any tree's root

# c2sp.org/tlog-checkpoint's example, and golang.org/x/mod/sumdb/note's PeterNeumann example.
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "\u2014 example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="


def test_checkpoint_round_trip_and_the_spec_example() -> None:
    body = notes.checkpoint_body("obhut.example/ws-1", 70, ROOT)
    assert body == f"obhut.example/ws-1\n70\n{base64.b64encode(ROOT).decode()}\n"
    assert notes.parse_checkpoint_body(body) == ("obhut.example/ws-1", 70, ROOT)
    assert notes.parse_checkpoint_body(notes.checkpoint_body("o", 0, merkle.EMPTY_ROOT)) == (
        "o",
        0,
        merkle.EMPTY_ROOT,
    )
    spec_body, signatures = notes.parse_signed_note(SPEC_CHECKPOINT)
    origin, size, root = notes.parse_checkpoint_body(spec_body)
    assert (origin, size) == ("example.com/behind-the-sofa", 20852163)
    assert notes.checkpoint_body(origin, size, root) == spec_body
    [(name, key_id, signature)] = signatures
    assert name == origin
    assert len(key_id) == 4
    assert len(signature) == 64
    assert notes.signed_note(spec_body, name, key_id, signature) == SPEC_CHECKPOINT


@pytest.mark.parametrize(
    "body",
    [
        "origin\n5\n" + base64.b64encode(bytes(32)).decode(),  # no final newline
        "origin\nfive\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n-5\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n05\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n\u0665\n" + base64.b64encode(bytes(32)).decode() + "\n",  # an Arabic-Indic five
        "origin\n5\nnot base64!\n",
        "origin\n5\n" + base64.b64encode(bytes(32)).decode().rstrip("=") + "\n",  # padding missing
        "origin\n5\n" + "A" * 42 + "B=\n",  # the same 32 zero bytes, but with non-zero padding bits
        "origin\n5\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "origin\n5\n" + base64.b64encode(bytes(33)).decode() + "\n",
        "\n5\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n5\n",
        "origin\n5\n" + base64.b64encode(bytes(32)).decode() + "\nextension\n",
        "",
    ],
)
def test_malformed_checkpoint_bodies_are_refused(body: str) -> None:
    with pytest.raises(ValueError):
        notes.parse_checkpoint_body(body)


def test_checkpoint_body_refuses_what_it_could_not_parse_back() -> None:
    for origin, size, root in (("", 1, bytes(32)), ("a\nb", 1, bytes(32)), ("o", -1, bytes(32)), ("o", 1, b"x")):
        with pytest.raises(ValueError):
            notes.checkpoint_body(origin, size, root)


def test_note_key_id_and_verifier_key_follow_the_spec() -> None:
    public_key = base64.b64decode(PETER_VKEY.split("+")[2])[1:]
    by_hand = hashlib.sha256(b"PeterNeumann" + b"\x0a" + b"\x01" + public_key).digest()[:4]
    assert notes.note_key_id("PeterNeumann", public_key) == by_hand == bytes.fromhex("c74f20a3")
    assert notes.verifier_key("PeterNeumann", public_key) == PETER_VKEY
    for name, key in (("with space", public_key), ("with+plus", public_key), ("", public_key), ("ok", bytes(31))):
        with pytest.raises(ValueError):
            notes.note_key_id(name, key)


def test_signed_note_round_trip_matches_the_go_example() -> None:
    raw = base64.b64decode(PETER_SIG)
    note = notes.signed_note(PETER_TEXT, "PeterNeumann", raw[:4], raw[4:])
    assert note == f"{PETER_TEXT}\n\u2014 PeterNeumann {PETER_SIG}\n"
    assert notes.parse_signed_note(note) == (PETER_TEXT, [("PeterNeumann", bytes.fromhex("c74f20a3"), raw[4:])])
    cosigned = note + "\u2014 witness.example/w1 " + base64.b64encode(b"\x01\x02\x03\x04" + bytes(64)).decode() + "\n"
    assert [name for name, _, _ in notes.parse_signed_note(cosigned)[1]] == ["PeterNeumann", "witness.example/w1"]


def test_a_note_body_may_hold_blank_lines() -> None:
    body = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n"
    note = notes.signed_note(body, "quasimodo.example/salvatore", b"\x00\x00\x00\x01", bytes(64))
    assert notes.parse_signed_note(note)[0] == body


SIGNATURE = base64.b64encode(b"\xc7\x4f\x20\xa3" + bytes(64)).decode()


@pytest.mark.parametrize(
    "note",
    [
        f"{PETER_TEXT}\u2014 PeterNeumann {SIGNATURE}\n",  # no blank line
        f"{PETER_TEXT}\n\u2014 PeterNeumann {SIGNATURE}",  # no final newline
        f"{PETER_TEXT}\n- PeterNeumann {SIGNATURE}\n",  # a hyphen, not an em dash
        f"{PETER_TEXT}\n\u2014PeterNeumann {SIGNATURE}\n",
        f"{PETER_TEXT}\n\u2014 Peter+Neumann {SIGNATURE}\n",
        f"{PETER_TEXT}\n\u2014 Peter Neumann {SIGNATURE}\n",
        f"{PETER_TEXT}\n\u2014 PeterNeumann\n",
        f"{PETER_TEXT}\n\u2014 PeterNeumann {SIGNATURE[:-1]}\n",  # bad padding
        f"{PETER_TEXT}\n\u2014 PeterNeumann x08gow==\n",  # a key ID and no signature
        f"{PETER_TEXT}\n\u2014 PeterNeumann not*base64\n",
        f"{PETER_TEXT}\n\u2014 PeterNeumann {SIGNATURE[:-2]}B=\n",  # non-canonical padding bits
        f"{PETER_TEXT}\n\u2014 PeterNeumann {SIGNATURE}\n\n",
        f"{PETER_TEXT}\t\n\u2014 PeterNeumann {SIGNATURE}\n",  # a control character
        PETER_TEXT + "\n" + f"\u2014 PeterNeumann {SIGNATURE}\n" * 101,
        "",
    ],
)
def test_malformed_signed_notes_are_refused(note: str) -> None:
    with pytest.raises(ValueError):
        notes.parse_signed_note(note)


def test_signed_note_refuses_what_it_could_not_parse_back() -> None:
    for body, name, key_id in (
        ("no newline", "n", b"1234"),
        ("tab\t\n", "n", b"1234"),
        ("ok\n", "with space", b"1234"),
        ("ok\n", "n", b"123"),
    ):
        with pytest.raises(ValueError):
            notes.signed_note(body, name, key_id, bytes(64))
