#include "audit/checkpoint.h"

#include "absl/strings/str_cat.h"
#include "audit/rfc3339.h"

namespace audit {
namespace {

constexpr absl::string_view kMagic("audit.v1.Checkpoint\0", 20);

}  // namespace

std::string CheckpointPayload(const v1::Checkpoint& c) {
  std::string out(kMagic.data(), kMagic.size());
  AppendU64(static_cast<uint64_t>(c.seq()), &out);
  out.push_back(static_cast<char>(c.kind()));
  AppendU64(static_cast<uint64_t>(c.tree_size()), &out);
  out.append(c.root_hash());
  out.append(c.chain_hash());
  AppendU64(static_cast<uint64_t>(ToUnixMicros(c.created_time())), &out);
  AppendU32(static_cast<uint32_t>(c.key_id().size()), &out);
  out.append(c.key_id());
  out.append(c.previous_signature_hash());
  AppendU32(static_cast<uint32_t>(c.note().size()), &out);
  out.append(c.note());
  return out;
}

void SignCheckpoint(const SigningKey& key, v1::Checkpoint* c) {
  c->set_key_id(key.key_id());
  c->set_public_key(key.public_key());
  c->set_signature(key.Sign(CheckpointPayload(*c)));
}

void EndorseCheckpoint(const SigningKey& previous_key, v1::Checkpoint* c) {
  c->set_endorsing_key_id(previous_key.key_id());
  c->set_endorsement(previous_key.Sign(CheckpointPayload(*c)));
}

absl::Status VerifyCheckpointSignature(const v1::Checkpoint& c, absl::string_view public_key) {
  if (c.root_hash().size() != 32 || c.chain_hash().size() != 32 ||
      c.previous_signature_hash().size() != 32) {
    return absl::InvalidArgumentError("malformed checkpoint: hashes must be 32 bytes");
  }
  if (c.key_id() != KeyId(public_key)) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint names key ", c.key_id(), ", not ", KeyId(public_key)));
  }
  return VerifySignature(public_key, CheckpointPayload(c), c.signature());
}

Sha256Digest SignatureHash(const v1::Checkpoint& c) { return Sha256(c.signature()); }

}  // namespace audit
