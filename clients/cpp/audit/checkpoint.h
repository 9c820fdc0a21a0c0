// Signed checkpoints (docs/VERIFICATION.md, "Checkpoints").
//
//   payload = "audit.v1.Checkpoint" 0x00 | u64 seq | u8 kind | u64 tree_size
//             | root_hash (32) | chain_hash (32) | i64 created_time (µs since the Unix epoch)
//             | u32 len | key_id | previous_signature_hash (32) | u32 len | note
//   signature   = Ed25519(signing key, payload)
//   endorsement = Ed25519(previous key, payload)   (key rotations only)
//
// Thread-safe.
#ifndef CLIENTS_CPP_AUDIT_CHECKPOINT_H_
#define CLIENTS_CPP_AUDIT_CHECKPOINT_H_

#include <string>

#include "absl/status/status.h"
#include "audit/canonical.h"
#include "audit/signing.h"
#include "audit/v1/proof.pb.h"

namespace audit {

std::string CheckpointPayload(const v1::Checkpoint& c);

// Sets key_id, public_key and signature (after every other field is final).
void SignCheckpoint(const SigningKey& key, v1::Checkpoint* c);
// Sets endorsement and endorsing_key_id: the previous key vouches for a rotation.
void EndorseCheckpoint(const SigningKey& previous_key, v1::Checkpoint* c);

// OK iff the entry is well formed and signed by `public_key` (and key_id names that key).
absl::Status VerifyCheckpointSignature(const v1::Checkpoint& c, absl::string_view public_key);

// SHA-256 of an entry's signature: what the next entry's previous_signature_hash must be.
Sha256Digest SignatureHash(const v1::Checkpoint& c);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_CHECKPOINT_H_
