#include "services/query/page_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "audit/canonical.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace audit::query {
namespace {

constexpr char kVersion = 1;
constexpr size_t kFingerprintBytes = 16;
constexpr size_t kMacBytes = 16;
constexpr size_t kPayloadBytes = 1 + 8 + kFingerprintBytes;

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("page_token: ", why));
}

}  // namespace

std::string PageTokenCodec::Fingerprint(const google::protobuf::Message& request) const {
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  const google::protobuf::Descriptor* d = copy->GetDescriptor();
  for (const char* field : {"page_size", "page_token"}) {
    if (const google::protobuf::FieldDescriptor* f = d->FindFieldByName(field)) {
      copy->GetReflection()->ClearField(copy.get(), f);
    }
  }
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    copy->SerializeToCodedStream(&coded);
  }
  std::string typed = std::string(d->full_name()) + '\0' + bytes;
  return std::string(DigestBytes(Sha256(typed)).substr(0, kFingerprintBytes));
}

std::string PageTokenCodec::Mac(absl::string_view payload) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), kMacBytes);
}

std::string PageTokenCodec::Encode(const google::protobuf::Message& request, int64_t cursor) const {
  std::string payload(1, kVersion);
  AppendU64(static_cast<uint64_t>(cursor), &payload);
  payload.append(Fingerprint(request));
  payload.append(Mac(payload));
  std::string token;
  absl::WebSafeBase64Escape(payload, &token);
  return token;
}

absl::StatusOr<int64_t> PageTokenCodec::Decode(const google::protobuf::Message& request,
                                               absl::string_view token) const {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || raw.size() != kPayloadBytes + kMacBytes ||
      raw[0] != kVersion) {
    return Bad("malformed");
  }
  const absl::string_view payload = absl::string_view(raw).substr(0, kPayloadBytes);
  const std::string mac = Mac(payload);
  if (CRYPTO_memcmp(mac.data(), raw.data() + kPayloadBytes, kMacBytes) != 0) {
    return Bad("not issued by this service (or its secret changed)");
  }
  if (payload.substr(9) != Fingerprint(request)) {
    return Bad("issued for a different query; keep every request field but page_size");
  }
  uint64_t cursor = 0;
  for (int i = 1; i <= 8; ++i) cursor = cursor << 8 | static_cast<uint8_t>(payload[i]);
  return static_cast<int64_t>(cursor);
}

}  // namespace audit::query
