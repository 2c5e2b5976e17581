#include "sha256.h"

#include <cstring>

namespace squall::sha256 {

namespace {

constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline uint32_t loadBigEndian(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

inline void storeBigEndian(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

}  // namespace

Hash::Hash() { std::memcpy(h_, kInitial, sizeof h_); }

void Hash::block(const uint8_t* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) w[i] = loadBigEndian(p + 4 * i);
  for (int i = 16; i < 64; i++) {
    const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int i = 0; i < 64; i++) {
    const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[i] + w[i];
    const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
  h_[5] += f;
  h_[6] += g;
  h_[7] += h;
}

void Hash::update(const uint8_t* data, size_t length) {
  total_ += length;
  while (length > 0) {
    if (used_ == 0 && length >= kBlockBytes) {
      block(data);
      data += kBlockBytes;
      length -= kBlockBytes;
      continue;
    }
    const size_t take = length < kBlockBytes - used_ ? length : kBlockBytes - used_;
    std::memcpy(buf_ + used_, data, take);
    used_ += take;
    data += take;
    length -= take;
    if (used_ == kBlockBytes) {
      block(buf_);
      used_ = 0;
    }
  }
}

void Hash::finish(uint8_t out[kDigestBytes]) {
  const uint64_t bits = total_ * 8;
  buf_[used_++] = 0x80;
  if (used_ > kBlockBytes - 8) {
    std::memset(buf_ + used_, 0, kBlockBytes - used_);
    block(buf_);
    used_ = 0;
  }
  std::memset(buf_ + used_, 0, kBlockBytes - 8 - used_);
  for (int i = 0; i < 8; i++) buf_[kBlockBytes - 1 - i] = uint8_t(bits >> (8 * i));
  block(buf_);
  for (int i = 0; i < 8; i++) storeBigEndian(out + 4 * i, h_[i]);
}

void digest(const uint8_t* data, size_t length, uint8_t out[kDigestBytes]) {
  Hash hash;
  hash.update(data, length);
  hash.finish(out);
}

void hmac(const uint8_t* key, size_t key_length, const Part* parts, size_t count, uint8_t out[kDigestBytes]) {
  uint8_t k[kBlockBytes] = {};
  if (key_length > kBlockBytes) {
    digest(key, key_length, k);
  } else if (key_length > 0) {
    std::memcpy(k, key, key_length);
  }
  uint8_t pad[kBlockBytes];
  for (size_t i = 0; i < kBlockBytes; i++) pad[i] = k[i] ^ 0x36;
  Hash inner;
  inner.update(pad, kBlockBytes);
  for (size_t i = 0; i < count; i++) inner.update(parts[i].data, parts[i].length);
  uint8_t inner_digest[kDigestBytes];
  inner.finish(inner_digest);
  for (size_t i = 0; i < kBlockBytes; i++) pad[i] = k[i] ^ 0x5c;
  Hash outer;
  outer.update(pad, kBlockBytes);
  outer.update(inner_digest, kDigestBytes);
  outer.finish(out);
}

bool equalConstantTime(const uint8_t* a, const uint8_t* b, size_t length) {
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < length; i++) diff = uint8_t(diff | (a[i] ^ b[i]));
  return diff == 0;
}

}  // namespace squall::sha256
