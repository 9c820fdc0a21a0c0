#!/usr/bin/env python3
"""Checks an inclusion proof by hand: an independent implementation of docs/VERIFICATION.md.

It shares no code with the audit trail: Python's hashlib for SHA-256 and the openssl command
for Ed25519. Input: one line of `auditctl prove POSITION --output=ndjson` on stdin.

    auditctl prove 42 --public_key=checkpoint.pub --output=ndjson \
      | python3 tools/verify/verify_proof.py checkpoint.pub

Prints each step and exits 0 if the event is leaf POSITION-1 of the tree whose root the
checkpoint signs, and the signature verifies with the given public key; 1 otherwise.
(The event's content hash itself is checked by `auditctl verify`: recomputing it needs the
canonical encoding of docs/API.md, more than a page of code.)
"""
import base64
import datetime
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

KINDS = {"CHECKPOINT_KIND_CHECKPOINT": 1, "CHECKPOINT_KIND_KEY_ROTATION": 2,
         "CHECKPOINT_KIND_GAP": 3}


def micros(rfc3339):
    """RFC 3339 UTC time ('...Z', 0 to 9 fractional digits) -> microseconds since the epoch."""
    text = rfc3339.rstrip("Z")
    whole, _, fraction = text.partition(".")
    seconds = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def sha256(data):
    return hashlib.sha256(data).digest()


def record(event):
    """The canonical record of a stored event (docs/VERIFICATION.md, "Records")."""
    topic = event["topic"].encode()
    return (b"audit.v1.EventRecord\x00"
            + struct.pack(">Q", event["position"])
            + struct.pack(">q", micros(event["recorded_time"]))
            + struct.pack(">I", len(topic)) + topic
            + struct.pack(">I", event["partition"])
            + struct.pack(">Q", event["offset"])
            + bytes.fromhex(event["content_hash"]))


def root_from_inclusion(index, size, leaf, proof):
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to, or None."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def checkpoint_payload(c):
    """The signed bytes of a checkpoint (docs/VERIFICATION.md, "Checkpoints")."""
    key_id = c["key_id"].encode()
    note = c.get("note", "").encode()
    return (b"audit.v1.Checkpoint\x00"
            + struct.pack(">Q", int(c["seq"]))
            + struct.pack(">B", KINDS[c["kind"]])
            + struct.pack(">Q", int(c.get("tree_size", "0")))
            + base64.b64decode(c["root_hash"])
            + base64.b64decode(c["chain_hash"])
            + struct.pack(">q", micros(c["created_time"]))
            + struct.pack(">I", len(key_id)) + key_id
            + base64.b64decode(c["previous_signature_hash"])
            + struct.pack(">I", len(note)) + note)


def openssl_verify(public_key_pem, payload, signature):
    with tempfile.TemporaryDirectory() as d:
        msg, sig = os.path.join(d, "payload"), os.path.join(d, "signature")
        with open(msg, "wb") as f:
            f.write(payload)
        with open(sig, "wb") as f:
            f.write(signature)
        result = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", public_key_pem, "-rawin",
             "-in", msg, "-sigfile", sig], capture_output=True)
        return result.returncode == 0


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: verify_proof.py PUBLIC_KEY.pem < prove-output.json")
    doc = json.loads(sys.stdin.readline())
    event, checkpoint = doc["event"], doc["checkpoint"]
    ok = True

    leaf = sha256(b"\x00" + record(event))
    print(f"1. leaf hash of position {event['position']}: {leaf.hex()}")

    root = root_from_inclusion(doc["leaf_index"], doc["tree_size"], leaf,
                               [bytes.fromhex(h) for h in doc["proof"]])
    signed_root = base64.b64decode(checkpoint["root_hash"])
    print(f"2. root from {len(doc['proof'])} proof hashes: "
          f"{root.hex() if root else 'proof malformed'}")
    print(f"   root signed by checkpoint seq {checkpoint['seq']}: {signed_root.hex()}")
    if root != signed_root or int(checkpoint.get("tree_size", "0")) != doc["tree_size"]:
        print("   MISMATCH: the event is not proven to be in the signed tree")
        ok = False

    signed = openssl_verify(sys.argv[1], checkpoint_payload(checkpoint),
                            base64.b64decode(checkpoint["signature"]))
    print(f"3. Ed25519 signature of checkpoint seq {checkpoint['seq']} with "
          f"{sys.argv[1]}: {'valid' if signed else 'INVALID'}")
    ok = ok and signed

    print("PROVEN" if ok else "NOT PROVEN")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
