#include "audit/signing.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "audit/canonical.h"

namespace audit {
namespace {

std::shared_ptr<void> Own(EVP_PKEY* k) {
  return std::shared_ptr<void>(k, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string RawPublic(EVP_PKEY* k) {
  size_t len = 32;
  std::string raw(len, '\0');
  EVP_PKEY_get_raw_public_key(k, reinterpret_cast<unsigned char*>(raw.data()), &len);
  raw.resize(len);
  return raw;
}

std::string Pem(EVP_PKEY* k, bool private_key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (private_key) {
    PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PUBKEY(bio, k);
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace

absl::StatusOr<SigningKey> SigningKey::FromPem(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr || EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
    if (k != nullptr) EVP_PKEY_free(k);
    return absl::InvalidArgumentError("not an Ed25519 private key in PEM (PKCS#8)");
  }
  SigningKey key;
  key.key_ = Own(k);
  key.public_key_ = RawPublic(k);
  return key;
}

absl::StatusOr<SigningKey> SigningKey::FromPemFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<SigningKey> key = FromPem(*pem);
  if (!key.ok())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", key.status().message()));
  return key;
}

SigningKey SigningKey::Generate() {
  EVP_PKEY* k = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  EVP_PKEY_keygen_init(ctx);
  EVP_PKEY_keygen(ctx, &k);
  EVP_PKEY_CTX_free(ctx);
  SigningKey key;
  key.key_ = Own(k);
  key.public_key_ = RawPublic(k);
  return key;
}

std::string SigningKey::Sign(absl::string_view message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(key_.get()));
  size_t len = 64;
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(message.data()), message.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  return sig;
}

std::string SigningKey::key_id() const { return KeyId(public_key_); }
std::string SigningKey::PrivatePem() const { return Pem(static_cast<EVP_PKEY*>(key_.get()), true); }
std::string SigningKey::PublicPem() const { return Pem(static_cast<EVP_PKEY*>(key_.get()), false); }

std::string KeyId(absl::string_view public_key) {
  const Sha256Digest d = Sha256(public_key);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(d.data()), 8));
}

absl::StatusOr<std::string> PublicKeyFromPem(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr || EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
    if (k != nullptr) EVP_PKEY_free(k);
    return absl::InvalidArgumentError("not an Ed25519 public key in PEM");
  }
  std::string raw = RawPublic(k);
  EVP_PKEY_free(k);
  return raw;
}

absl::StatusOr<std::string> PublicKeyFromPemFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<std::string> key = PublicKeyFromPem(*pem);
  if (!key.ok())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", key.status().message()));
  return key;
}

absl::Status VerifySignature(absl::string_view public_key, absl::string_view message,
                             absl::string_view signature) {
  EVP_PKEY* k = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(public_key.data()),
      public_key.size());
  if (k == nullptr) return absl::InvalidArgumentError("not a raw Ed25519 public key");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  if (!ok) return absl::InvalidArgumentError("signature does not verify");
  return absl::OkStatus();
}

}  // namespace audit
