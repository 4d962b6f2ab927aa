// The protobuf wire format, written by hand: deft emits a few message types (TensorBoard
// events, ONNX models) and needs no protoc-generated code for them.
//
//   ProtoWriter dim;
//   dim.varint(1, 28);                       // field 1, an int64
//   ProtoWriter shape;
//   shape.message(1, dim).bytes(2, "N");     // an embedded message, a string
//   std::string wire = shape.str();
//
// Fields are appended in call order. Callers skip proto3 default values themselves
// where they want the canonical (shortest) encoding; readers accept any field order.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace deft {

class ProtoWriter {
 public:
  ProtoWriter& varint(int field,
                      uint64_t v);  // int32/int64/uint/enum/bool (negatives as 10-byte two's complement)
  ProtoWriter& sint(int field, int64_t v) { return varint(field, static_cast<uint64_t>(v)); }
  ProtoWriter& fixed64(int field, uint64_t bits);
  ProtoWriter& fixed32(int field, uint32_t bits);
  ProtoWriter& double_(int field, double v);          // wire type 1
  ProtoWriter& float_(int field, float v);            // wire type 5
  ProtoWriter& bytes(int field, std::string_view s);  // string, bytes or an embedded message
  ProtoWriter& message(int field, const ProtoWriter& m) { return bytes(field, m.str()); }
  ProtoWriter& packed_doubles(int field, std::span<const double> v);
  ProtoWriter& packed_floats(int field, std::span<const float> v);
  ProtoWriter& packed_varints(int field, std::span<const int64_t> v);  // repeated int32/int64, packed
  const std::string& str() const { return buf_; }
  bool empty() const { return buf_.empty(); }

  static void append_varint(std::string& out, uint64_t v);

 private:
  void key(int field, int wire_type) { append_varint(buf_, (static_cast<uint64_t>(field) << 3) | wire_type); }
  std::string buf_;
};

}  // namespace deft
