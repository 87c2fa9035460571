// A small Python pickle reader, enough for the CIFAR-100 python distribution (the `train`,
// `test` and `meta` files): protocols 2 to 5 with their string, number and container opcodes,
// and numpy arrays pickled through numpy.core.multiarray._reconstruct (or _frombuffer) with
// their raw bytes. Nothing is executed: globals other than the few numpy and codecs builders
// become inert placeholders.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sdlora::data::pickle {

enum class Kind {
  kNone,
  kBool,
  kInt,
  kFloat,
  kStr,
  kBytes,
  kList,
  kTuple,
  kDict,
  kGlobal,
  kArray,
  kDType,
  kOpaque
};

struct Object;
using Ref = std::shared_ptr<Object>;

struct Object {
  Kind kind = Kind::kNone;
  int64_t i = 0;                          // kBool, kInt
  double f = 0.0;                         // kFloat
  std::string s;                          // kStr (UTF-8), kBytes (raw); kGlobal: "module.name"
  std::vector<Ref> items;                 // kList, kTuple
  std::vector<std::pair<Ref, Ref>> dict;  // kDict, in insertion order
  // kArray: shape, element type ("u1", "i8", ...), byte order ('<', '>', '|'), raw bytes (C order).
  // kDType: type and byte order.
  std::vector<int64_t> shape;
  std::string dtype;
  char byte_order = '|';
  std::string raw;
  bool fortran_order = false;
  // Parser bookkeeping: the nesting height of a container (1 for a leaf) and whether another
  // container holds it (a held container is never modified again, so no cycle can form).
  int height = 1;
  bool held = false;
};

const char* kind_name(Kind k);

// Limits of the reader: nesting deeper than kMaxDepth containers and more than kMaxMemo memo
// entries are errors. The objects it returns form no cycles (a container is never modified
// after another container holds it: a pickle of a self-containing list is an error), so they
// are freed with the last reference.
constexpr int kMaxDepth = 100;
constexpr size_t kMaxMemo = size_t{1} << 22;

// Parses one pickle; `name` (the file) appears in every error.
Ref load(const std::vector<uint8_t>& bytes, const std::string& name);

// Helpers that check types and throw with `name` and the key in the message.
// Looks up a dict entry whose key is the str or bytes `key`; nullptr when absent.
Ref find(const Ref& dict, const std::string& key);
Ref get(const Ref& dict, const std::string& key, const std::string& name);
// A list or tuple of ints, or an integer numpy array.
std::vector<int64_t> to_int_vector(const Ref& obj, const std::string& what);
// A list or tuple of str or bytes.
std::vector<std::string> to_string_vector(const Ref& obj, const std::string& what);

}  // namespace sdlora::data::pickle
