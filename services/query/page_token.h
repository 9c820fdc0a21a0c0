// Opaque page tokens for keyset pagination that cannot be forged or moved to another query.
//
// A token carries the last position (or id) a page ended at, a fingerprint of the query it
// belongs to (everything in the request but page_size and page_token), and an HMAC-SHA256
// under the server's secret. Decode() refuses a token that is malformed, signed with another
// secret, or issued for a different query, with INVALID_ARGUMENT naming `page_token`.
// Replicas behind a load balancer must share the secret (--page_token_secret_file).
#ifndef SERVICES_QUERY_PAGE_TOKEN_H_
#define SERVICES_QUERY_PAGE_TOKEN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace audit::query {

class PageTokenCodec {
 public:
  // `secret` should be at least 32 random bytes.
  explicit PageTokenCodec(std::string secret) : secret_(std::move(secret)) {}

  // A token resuming `request` (with its page fields ignored) after `cursor`.
  std::string Encode(const google::protobuf::Message& request, int64_t cursor) const;

  // The cursor of `token`, if it is genuine and belongs to `request`.
  absl::StatusOr<int64_t> Decode(const google::protobuf::Message& request,
                                 absl::string_view token) const;

 private:
  std::string Fingerprint(const google::protobuf::Message& request) const;
  std::string Mac(absl::string_view payload) const;
  std::string secret_;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_PAGE_TOKEN_H_
