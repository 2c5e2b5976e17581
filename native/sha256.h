// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the fabric's handshake (auth.h). Written here
// rather than taken from OpenSSL: the addon links nothing but libc today, the inputs are a few hundred
// bytes per connection, and test/fabric-auth.test.ts checks both against node:crypto on random inputs.
// Not constant-time in the data's length (nothing here is secret in its length); constant-time in the data.

#pragma once
#include <cstddef>
#include <cstdint>

namespace squall::sha256 {

constexpr size_t kDigestBytes = 32;
constexpr size_t kBlockBytes = 64;

class Hash {
 public:
  Hash();
  void update(const uint8_t* data, size_t length);
  void finish(uint8_t out[kDigestBytes]);

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[kBlockBytes];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

void digest(const uint8_t* data, size_t length, uint8_t out[kDigestBytes]);

// HMAC-SHA256 over the concatenation of `parts` (pointer, length pairs).
struct Part {
  const uint8_t* data;
  size_t length;
};
void hmac(const uint8_t* key, size_t key_length, const Part* parts, size_t count, uint8_t out[kDigestBytes]);

// True when a and b are equal; the time taken does not depend on where they differ.
bool equalConstantTime(const uint8_t* a, const uint8_t* b, size_t length);

}  // namespace squall::sha256
