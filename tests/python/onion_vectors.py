#!/usr/bin/env python3
"""An independent recomputation of the onion vectors of docs/protocol.md section 8.6 and the
anonymous-IP vectors of section 8.9.

It follows the specification in docs/protocol.md section 8 and shares no code with the Rust
implementation: x25519, ed25519, ChaCha20-Poly1305 and raw ChaCha20 come from
`cryptography`, BLAKE2s from `hashlib`; the ChaCha block function (for HChaCha8, the nonce permutation's round function,
and for rand_chacha's ChaCha20Rng, which draws the test's keys) is written out here and
checked against `cryptography`'s ChaCha20 first.

Every `vector onion_<name> = <hex>` and `vector anon_<name> = <hex>` line of
docs/protocol.md is compared with the value computed here; the script prints OK or MISMATCH
per vector and exits non-zero on any mismatch or on any onion or anon vector of the document
it does not compute.

    python3 tests/python/onion_vectors.py [path/to/protocol.md]
"""

import hashlib
import pathlib
import re
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

# --- Primitives ---------------------------------------------------------------------------


def seq(first, n=32):
    """The n bytes first, first+1, ... (mod 256): the inputs of docs/protocol.md 3.9."""
    return bytes((first + i) & 0xFF for i in range(n))


def xor(a, b):
    assert len(a) == len(b)
    return bytes(x ^ y for x, y in zip(a, b))


def hash_labeled(n, label, *parts):
    """3.1: BLAKE2s-n over len(label) as u8 || label || parts."""
    h = hashlib.blake2s(digest_size=n)
    h.update(bytes([len(label)]))
    h.update(label)
    for p in parts:
        h.update(p)
    return h.digest()


MASK32 = 0xFFFFFFFF
SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def _rotl(v, c):
    return ((v << c) & MASK32) | (v >> (32 - c))


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & MASK32
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK32
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK32
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK32
    s[b] = _rotl(s[b] ^ s[c], 7)


def _double_rounds(s, n):
    for _ in range(n):
        _quarter(s, 0, 4, 8, 12)
        _quarter(s, 1, 5, 9, 13)
        _quarter(s, 2, 6, 10, 14)
        _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15)
        _quarter(s, 1, 6, 11, 12)
        _quarter(s, 2, 7, 8, 13)
        _quarter(s, 3, 4, 9, 14)


def chacha20_block(key, words12_15):
    """One ChaCha20 block: constants, key, then the four words 12..15 as given."""
    init = list(SIGMA) + list(struct.unpack("<8I", key)) + list(words12_15)
    s = init[:]
    _double_rounds(s, 10)
    return struct.pack("<16I", *((a + b) & MASK32 for a, b in zip(s, init)))


def hchacha8(key, inp):
    """HChaCha with 8 rounds (4 double rounds): words 0..3 and 12..15 of the state, no
    feed-forward."""
    assert len(key) == 32 and len(inp) == 16
    s = list(SIGMA) + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", inp))
    _double_rounds(s, 4)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def chacha20_stream(key, nonce, n):
    """RFC 8439 ChaCha20 keystream (block counter from 0), from `cryptography`, whose nonce
    is 4-byte little-endian counter | 12-byte nonce."""
    enc = Cipher(algorithms.ChaCha20(key, b"\0" * 4 + nonce), mode=None).encryptor()
    return enc.update(b"\0" * n)


class ChaCha20Rng:
    """rand_chacha 0.3's ChaCha20Rng::from_seed: ChaCha20 keyed by the seed, 64-bit block
    counter from 0 in words 12..13, stream 0 in words 14..15, output words little-endian in
    order. fill_bytes consumes whole words (every read here is a multiple of 4 bytes)."""

    def __init__(self, seed):
        self.key = seed
        self.block = 0
        self.buf = b""

    def read(self, n):
        assert n % 4 == 0
        while len(self.buf) < n:
            lo, hi = self.block & MASK32, self.block >> 32
            self.buf += chacha20_block(self.key, (lo, hi, 0, 0))
            self.block += 1
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def self_test():
    # The hand-written block function against `cryptography` (RFC 8439, nonce 0).
    key = seq(0x42)
    ours = b"".join(chacha20_block(key, (i, 0, 0, 0)) for i in range(3))
    assert ours == chacha20_stream(key, b"\0" * 12, 192), "ChaCha20 block function"
    # HChaCha20 test vector (draft-irtf-cfrg-xchacha-03, 2.2.1), through the same rounds.
    k = bytes(range(32))
    n = bytes.fromhex("000000090000004a0000000031415927")
    s = list(SIGMA) + list(struct.unpack("<8I", k)) + list(struct.unpack("<4I", n))
    _double_rounds(s, 10)
    got = struct.pack("<8I", *(s[0:4] + s[12:16]))
    want = bytes.fromhex(
        "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    )
    assert got == want, "HChaCha20 vector"


def x25519_public(secret):
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def x25519(secret, public):
    shared = X25519PrivateKey.from_private_bytes(secret).exchange(
        X25519PublicKey.from_public_bytes(public)
    )
    assert shared != b"\0" * 32
    return shared


def seal(key, nonce, ad, plain):
    """ChaCha20-Poly1305 with a detached tag: (ciphertext, tag)."""
    out = ChaCha20Poly1305(key).encrypt(nonce, plain, ad)
    return out[:-16], out[-16:]


def open_(key, nonce, ad, ct, tag):
    return ChaCha20Poly1305(key).decrypt(nonce, ct + tag, ad)  # raises InvalidTag


# --- 8.1 Onion keys -------------------------------------------------------------------------

RECORD_SIGN_LABEL = b"veilmesh onion key v1"


def node_id(ed25519_public):
    return hash_labeled(16, b"veilmesh node id v1", ed25519_public)


def onion_key_record(ed_seed, seqno, lifetime, flags, key):
    signer = Ed25519PrivateKey.from_private_bytes(ed_seed)
    nid = node_id(signer.public_key().public_bytes_raw())
    signed = nid + struct.pack(">IHBB", seqno, lifetime, flags, 0) + key
    assert len(signed) == 56
    sig = signer.sign(hash_labeled(32, RECORD_SIGN_LABEL, signed))
    return signed + sig


# --- 8.3 Key derivation --------------------------------------------------------------------

LABELS = {
    "record": b"veilmesh onion record v1",
    "shift": b"veilmesh onion shift v1",
    "fwd": b"veilmesh onion fwd v1",
    "bwd": b"veilmesh onion bwd v1",
    "fwd_header": b"veilmesh onion fwd header v1",
    "bwd_header": b"veilmesh onion bwd header v1",
    "fwd_nonce": b"veilmesh onion fwd nonce v1",
    "bwd_nonce": b"veilmesh onion bwd nonce v1",
}


def derive(shared, ephemeral, onion_public):
    return {
        name: hash_labeled(32, label, shared, ephemeral, onion_public)
        for name, label in LABELS.items()
    }


# --- 8.2 Circuit build ---------------------------------------------------------------------

MAX_HOPS = 3
RECORD_LEN = 116
BUILD_LEN = MAX_HOPS * RECORD_LEN
CLEAR_LEN = 36
ORDER_LEN = 64
ZERO_NONCE = b"\0" * 12


def encode_order(exit_, prev_id, next_id, next_link, exit_data):
    out = (
        bytes([1 if exit_ else 0, 0])
        + prev_id
        + next_id
        + struct.pack(">I", next_link)
        + exit_data
    )
    assert len(out) == ORDER_LEN
    return out


def seal_build(hops, first_link, rng):
    """hops: [(onion public, key seq, order bytes, next link)]. Returns the build and each
    relay's derived keys."""
    out = bytearray(rng.read(BUILD_LEN))
    keys = []
    in_link = first_link
    for j, (onion_public, key_seq, order, next_link) in enumerate(hops):
        secret = rng.read(32)
        eph = x25519_public(secret)
        k = derive(x25519(secret, onion_public), eph, onion_public)
        clear = struct.pack(">I", key_seq) + eph
        ct, tag = seal(k["record"], ZERO_NONCE, clear + struct.pack(">I", in_link), order)
        record = clear + ct + tag
        # Relays 0..j-1 each shift the build one record forward and XOR their keystream over
        # all of it: record j reaches relay j at offset 0 after relay i's keystream was XORed
        # at offset (j - i - 1) * RECORD_LEN of that relay's view.
        for i in range(j):
            stream = chacha20_stream(keys[i]["shift"], ZERO_NONCE, BUILD_LEN)
            at = (j - i - 1) * RECORD_LEN
            record = xor(record, stream[at : at + RECORD_LEN])
        out[j * RECORD_LEN : (j + 1) * RECORD_LEN] = record
        keys.append(k)
        in_link = next_link
    return bytes(out), keys


def open_build(secret, onion_public, in_link, msg):
    """The relay's side: (its order, its keys, the build for the next relay)."""
    clear = msg[:CLEAR_LEN]
    eph = msg[4:CLEAR_LEN]
    k = derive(x25519(secret, eph), eph, onion_public)
    order = open_(
        k["record"],
        ZERO_NONCE,
        clear + struct.pack(">I", in_link),
        msg[CLEAR_LEN : CLEAR_LEN + ORDER_LEN],
        msg[CLEAR_LEN + ORDER_LEN : RECORD_LEN],
    )
    shifted = msg[RECORD_LEN:] + b"\0" * RECORD_LEN
    return order, k, xor(shifted, chacha20_stream(k["shift"], ZERO_NONCE, BUILD_LEN))


# --- 8.5 Nonce permutation -----------------------------------------------------------------


def _round(key, r, half):
    return hchacha8(key, bytes([r]) + half + b"\0" * 9)[:6]


def nonce_encode(key, counter):
    block = struct.pack(">Q", counter) + b"\0" * 4
    left, right = block[:6], block[6:]
    for r in range(4):
        left, right = right, xor(left, _round(key, r, right))
    return left + right


def nonce_decode(key, nonce):
    left, right = nonce[:6], nonce[6:]
    for r in reversed(range(4)):
        left, right = xor(right, _round(key, r, left)), left
    block = left + right
    if block[8:] != b"\0" * 4:
        return None
    return struct.unpack(">Q", block[:8])[0]


# --- 8.4 Cells -------------------------------------------------------------------------------

SLOT_LEN = 28
SLOTS_LEN = MAX_HOPS * SLOT_LEN
FORWARD, BACKWARD = 0, 1


def layer_ad(link, direction, rest):
    """link id u32 | direction | the 56 bytes of slots after the relay's own (forward) or
    56 zero bytes (backward)."""
    return struct.pack(">IB", link, direction) + rest


def relay_open_forward(k, in_link, region):
    slots, body = region[:SLOTS_LEN], region[SLOTS_LEN:]
    tag, nonce = slots[:16], slots[16:SLOT_LEN]
    counter = nonce_decode(k["fwd_nonce"], nonce)
    assert counter is not None, "nonce redundancy"
    body = ChaCha20Poly1305(k["fwd"]).decrypt(
        nonce, body + tag, layer_ad(in_link, FORWARD, slots[SLOT_LEN:])
    )
    slots = slots[SLOT_LEN:] + b"\0" * SLOT_LEN
    slots = xor(slots, chacha20_stream(k["fwd_header"], nonce, SLOTS_LEN))
    return counter, slots + body


def relay_seal_backward(k, in_link, counter, region):
    slots, body = region[:SLOTS_LEN], region[SLOTS_LEN:]
    nonce = nonce_encode(k["bwd_nonce"], counter)
    rest = xor(slots[: SLOTS_LEN - SLOT_LEN], chacha20_stream(k["bwd_header"], nonce, 56))
    ct, tag = seal(k["bwd"], nonce, layer_ad(in_link, BACKWARD, b"\0" * 56), body)
    return tag + nonce + rest + ct


def creator_seal_forward(keys, links, pad, counter, region):
    """The creator's forward cell. View j = the slots relay j receives; view j+1 =
    (view j without its first slot, a zero slot appended) XOR relay j's header keystream.
    The slots after the first in the exit's view are fixed by the relays' keystreams (and the
    pad's, for a short circuit); every other view follows backwards from its successor."""
    n = len(keys)
    body = region[SLOTS_LEN:]
    nonces = [nonce_encode(k["fwd_nonce"], counter) for k in keys]
    streams = [chacha20_stream(k["fwd_header"], nonce, SLOTS_LEN) for k, nonce in zip(keys, nonces)]
    # Relay 0's view beyond the real slots: the pad keystream (nonce = counter u64 BE | 0^4).
    pad_stream = chacha20_stream(pad, struct.pack(">Q", counter) + b"\0" * 4, SLOTS_LEN)
    view = b"\0" * (n * SLOT_LEN) + pad_stream[: SLOTS_LEN - n * SLOT_LEN]
    for j in range(n - 1):
        view = xor(view[SLOT_LEN:] + b"\0" * SLOT_LEN, streams[j])
    # view[SLOT_LEN:] is now the exit's; seal inwards-out.
    for j in reversed(range(n)):
        rest = view[SLOT_LEN:]
        body, tag = seal(keys[j]["fwd"], nonces[j], layer_ad(links[j], FORWARD, rest), body)
        view = tag + nonces[j] + rest
        if j > 0:
            # Relay j-1's view: its own slot (set next round), then this view's first two
            # slots with its keystream removed (the third slot was relay j-1's blank).
            prev = xor(view, streams[j - 1])
            assert prev[SLOTS_LEN - SLOT_LEN :] == b"\0" * SLOT_LEN, "junk"
            view = b"\0" * SLOT_LEN + prev[: SLOTS_LEN - SLOT_LEN]
    return view + body


def creator_open_backward(keys, links, region):
    slots, body = region[:SLOTS_LEN], region[SLOTS_LEN:]
    counters = []
    for k, link in zip(keys, links):
        tag, nonce = slots[:16], slots[16:SLOT_LEN]
        counter = nonce_decode(k["bwd_nonce"], nonce)
        assert counter is not None, "nonce redundancy"
        counters.append(counter)
        body = open_(k["bwd"], nonce, layer_ad(link, BACKWARD, b"\0" * 56), body, tag)
        rest = xor(slots[SLOT_LEN:], chacha20_stream(k["bwd_header"], nonce, 56))
        slots = rest + b"\0" * SLOT_LEN  # the last slot is not read again
    return counters, body


# --- 8.6 The vectors -------------------------------------------------------------------------


LINKS = [0x01020304, 0x05060708, 0x090A0B0C]
PAD = seq(0xE0)
BODY = b"veilmesh onion vector".ljust(64, b"\0")
REPLY = b"veilmesh onion reply".ljust(64, b"\0")


def relay_keys():
    """Relay i's onion key: seq i+1, the first 32 bytes of ChaCha20Rng(seq(0x10 + 0x20 i))."""
    secrets = [ChaCha20Rng(seq(0x10 + 0x20 * i)).read(32) for i in range(3)]
    return secrets, [x25519_public(s) for s in secrets], [1, 2, 3]


def circuit(n, seed):
    """A circuit through relays 0..n-1 built with ChaCha20Rng(seq(seed)), opened by every
    relay: (the build as the creator sends it and as each later relay receives it, the
    creator's keys, the relays' keys)."""
    secrets, publics, key_seqs = relay_keys()
    ed_b = Ed25519PrivateKey.from_private_bytes(seq(0x40)).public_key().public_bytes_raw()
    ed_a = Ed25519PrivateKey.from_private_bytes(seq(0x00)).public_key().public_bytes_raw()
    nexts = [node_id(ed_b), seq(0xF0, 16)]
    # The creator, then relays 0 (node A) and 1 (node B).
    prevs = [seq(0xC0, 16), node_id(ed_a), node_id(ed_b)]
    hops, orders = [], []
    for i in range(n):
        exit_ = i == n - 1
        next_link = 0 if exit_ else LINKS[i + 1]
        order = encode_order(
            exit_,
            prevs[i],
            b"\0" * 16 if exit_ else nexts[i],
            next_link,
            seq(0xD0, 26) if exit_ else b"\0" * 26,
        )
        orders.append(order)
        hops.append((publics[i], key_seqs[i], order, next_link))
    build, creator_keys = seal_build(hops, LINKS[0], ChaCha20Rng(seq(seed)))
    builds, keys, msg = [build], [], build
    for i in range(n):
        assert struct.unpack(">I", msg[:4])[0] == key_seqs[i]
        order, k, msg = open_build(secrets[i], publics[i], LINKS[i], msg)
        assert order == orders[i], f"order of relay {i}"
        assert k == creator_keys[i], f"keys of relay {i}"
        keys.append(k)
        builds.append(msg)
    return builds[:-1], creator_keys, keys


def forward(creator_keys, keys, counter):
    """Forward cell `counter` of BODY: the cell as each relay receives it."""
    n = len(keys)
    cell = creator_seal_forward(creator_keys, LINKS[:n], PAD, counter, b"\0" * SLOTS_LEN + BODY)
    views = []
    for i in range(n):
        views.append(cell)
        got, cell = relay_open_forward(keys[i], LINKS[i], cell)
        assert got == counter
    assert cell[SLOTS_LEN:] == BODY, "forward plaintext at the exit"
    return views


def onion_vectors():
    v = {}
    _, publics, _ = relay_keys()
    v["onion_key_public"] = publics[0]
    v["onion_key_record_a"] = onion_key_record(seq(0x00), 1, 3600, 0x01, publics[0])

    builds, creator_keys, keys = circuit(3, 0x70)
    v["onion_build"], v["onion_build_after_hop0"], v["onion_build_after_hop1"] = builds
    cell0 = forward(creator_keys, keys, 0)
    cell1 = forward(creator_keys, keys, 1)
    v["onion_cell_forward"], v["onion_cell_after_hop0"], v["onion_cell_after_hop1"] = cell0
    nonces = b"".join(view[16:SLOT_LEN] for view in cell0 + cell1)
    # The same nonces straight from the permutation, and back.
    direct = b"".join(nonce_encode(k["fwd_nonce"], c) for c in (0, 1) for k in creator_keys)
    assert nonces == direct, "forward nonces"
    for c in (0, 1):
        for k in creator_keys:
            assert nonce_decode(k["fwd_nonce"], nonce_encode(k["fwd_nonce"], c)) == c
    v["onion_nonce_perm"] = nonces

    back = b"\0" * SLOTS_LEN + REPLY
    for i in (2, 1, 0):
        back = relay_seal_backward(keys[i], LINKS[i], 0, back)
    v["onion_cell_backward"] = back
    counters, got = creator_open_backward(creator_keys, LINKS, back)
    assert counters == [0, 0, 0] and got == REPLY, "backward cell at the creator"

    builds, creator_keys, keys = circuit(2, 0x90)
    v["onion_build_2relay"] = builds[0]
    v["onion_cell_forward_2relay"] = forward(creator_keys, keys, 0)[0]
    return v


# --- 8.9 Anonymous IP through circuits -----------------------------------------------------

ANON_IID_LABEL = b"veilmesh anonymous iid v1"
ANON_LABELS = {"fwd": b"veilmesh anonymous fwd v1", "bwd": b"veilmesh anonymous bwd v1"}
ANON_PLAIN = b"veilmesh anonymous vector"
ANON_REPLY = b"veilmesh anonymous reply"


def anon_identity(rng):
    """AnonIdentity::generate: the x25519 secret (32 bytes), then the claim secret (16)."""
    secret = rng.read(32)
    claim = rng.read(16)
    return secret, x25519_public(secret), claim


def anon_iid(sender_public):
    return hash_labeled(8, ANON_IID_LABEL, sender_public)


def anon_exit_data(sender_public, claim):
    """The build's exit data: iid (8) | claim secret (16) | 00 00."""
    out = anon_iid(sender_public) + claim + b"\0\0"
    assert len(out) == 26
    return out


def anon_flow(shared, sender_public, onion_public):
    return {
        name: hash_labeled(32, label, shared, sender_public, onion_public)
        for name, label in ANON_LABELS.items()
    }


def anon_nonce(counter):
    """3.6: 00 00 00 00 || counter u64 little-endian."""
    return b"\0" * 4 + struct.pack("<Q", counter)


def anon_forward_ad(exit_id, dst_id, key_seq, sender_public):
    out = exit_id + dst_id + struct.pack(">I", key_seq) + sender_public
    assert len(out) == 68
    return out


def anon_reply_ad(dst_id, exit_id, iid):
    out = dst_id + exit_id + iid
    assert len(out) == 40
    return out


def anon_vectors():
    v = {}
    secret, sender_public, claim = anon_identity(ChaCha20Rng(seq(0xA0)))
    v["anon_sender_public"] = sender_public
    iid = anon_iid(sender_public)
    v["anon_iid"] = iid
    v["anon_exit_data"] = anon_exit_data(sender_public, claim)

    # D = node B, whose onion key is relay 1's of 8.6 (seq 2); the exit is seq16(0xb0).
    onion_secrets, onion_publics, key_seqs = relay_keys()
    d_secret, d_public, key_seq = onion_secrets[1], onion_publics[1], key_seqs[1]
    ed_b = Ed25519PrivateKey.from_private_bytes(seq(0x40)).public_key().public_bytes_raw()
    dst_id = node_id(ed_b)
    exit_id = seq(0xB0, 16)

    sender = anon_flow(x25519(secret, d_public), sender_public, d_public)
    dest = anon_flow(x25519(d_secret, sender_public), sender_public, d_public)
    assert sender == dest, "flow keys at the two ends"

    fwd_ad = anon_forward_ad(exit_id, dst_id, key_seq, sender_public)
    ct, tag = seal(sender["fwd"], anon_nonce(0), fwd_ad, ANON_PLAIN)
    assert open_(dest["fwd"], anon_nonce(0), fwd_ad, ct, tag) == ANON_PLAIN
    v["anon_forward_sealed"] = ct + tag

    reply_ad = anon_reply_ad(dst_id, exit_id, iid)
    ct, tag = seal(dest["bwd"], anon_nonce(0), reply_ad, ANON_REPLY)
    assert open_(sender["bwd"], anon_nonce(0), reply_ad, ct, tag) == ANON_REPLY
    v["anon_reply_sealed"] = ct + tag
    return v


def documented(path):
    out = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"\s*vector (\S+) = ([0-9a-f]*)\s*", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def main():
    root = pathlib.Path(__file__).resolve().parents[2]
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "docs" / "protocol.md"
    self_test()
    doc = documented(path)
    computed = onion_vectors()
    computed.update(anon_vectors())
    bad = 0
    for name, value in computed.items():
        got = value.hex()
        if doc.get(name) == got:
            print(f"OK       {name}")
        else:
            bad += 1
            print(f"MISMATCH {name}\n  doc:    {doc.get(name)}\n  python: {got}")
    extra = sorted(
        n for n in doc if n.startswith(("onion_", "anon_")) and n not in computed
    )
    for name in extra:
        print(f"MISMATCH {name}: in the document, not computed here")
    print(f"{len(computed) - bad} of {len(computed)} onion and anon vectors match"
          + (f", {len(extra)} documented but not computed" if extra else ""))
    bad += len(extra)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
