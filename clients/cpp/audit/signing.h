// Ed25519 keys and signatures (OpenSSL), for checkpoints.
//
// Keys are files in PEM: the private key as PKCS#8 ("BEGIN PRIVATE KEY", mode 0600), the public
// key as SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"); `auditctl keygen` writes both, and
// `openssl genpkey -algorithm ed25519` works too. A key id is the hex of the first 8 bytes of
// SHA-256 over the raw 32-byte public key. Thread-safe.
#ifndef CLIENTS_CPP_AUDIT_SIGNING_H_
#define CLIENTS_CPP_AUDIT_SIGNING_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace audit {

class SigningKey {
 public:
  // From a PEM file or text. INVALID_ARGUMENT if not an Ed25519 private key.
  static absl::StatusOr<SigningKey> FromPemFile(const std::string& path);
  static absl::StatusOr<SigningKey> FromPem(absl::string_view pem);
  static SigningKey Generate();

  // The 64-byte signature of `message`.
  std::string Sign(absl::string_view message) const;
  const std::string& public_key() const { return public_key_; }  // raw, 32 bytes
  std::string key_id() const;
  std::string PrivatePem() const;
  std::string PublicPem() const;

 private:
  std::shared_ptr<void> key_;  // EVP_PKEY
  std::string public_key_;
};

// The key id of a raw 32-byte Ed25519 public key.
std::string KeyId(absl::string_view public_key);

// The raw public key from a PEM file or text ("BEGIN PUBLIC KEY").
absl::StatusOr<std::string> PublicKeyFromPemFile(const std::string& path);
absl::StatusOr<std::string> PublicKeyFromPem(absl::string_view pem);

// OK iff `signature` is `public_key`'s Ed25519 signature of `message`.
absl::Status VerifySignature(absl::string_view public_key, absl::string_view message,
                             absl::string_view signature);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_SIGNING_H_
