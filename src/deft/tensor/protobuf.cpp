#include "deft/tensor/protobuf.h"

#include <cstring>

namespace deft {

void ProtoWriter::append_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

ProtoWriter& ProtoWriter::varint(int field, uint64_t v) {
  key(field, 0);
  append_varint(buf_, v);
  return *this;
}

ProtoWriter& ProtoWriter::fixed64(int field, uint64_t bits) {
  key(field, 1);
  for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  return *this;
}

ProtoWriter& ProtoWriter::fixed32(int field, uint32_t bits) {
  key(field, 5);
  for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  return *this;
}

ProtoWriter& ProtoWriter::double_(int field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  return fixed64(field, bits);
}

ProtoWriter& ProtoWriter::float_(int field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return fixed32(field, bits);
}

ProtoWriter& ProtoWriter::bytes(int field, std::string_view s) {
  key(field, 2);
  append_varint(buf_, s.size());
  buf_.append(s);
  return *this;
}

ProtoWriter& ProtoWriter::packed_doubles(int field, std::span<const double> v) {
  key(field, 2);
  append_varint(buf_, v.size() * 8);
  for (double d : v) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }
  return *this;
}

ProtoWriter& ProtoWriter::packed_floats(int field, std::span<const float> v) {
  key(field, 2);
  append_varint(buf_, v.size() * 4);
  for (float f : v) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }
  return *this;
}

ProtoWriter& ProtoWriter::packed_varints(int field, std::span<const int64_t> v) {
  std::string body;
  for (int64_t x : v) append_varint(body, static_cast<uint64_t>(x));
  return bytes(field, body);
}

}  // namespace deft
