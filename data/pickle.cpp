// Pickle reader: a stack machine over the opcodes the CIFAR-100 files and numpy arrays use.
#include "data/pickle.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "tensor/error.h"

namespace sdlora::data::pickle {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kArray:
      return "numpy array";
    case Kind::kDType:
      return "numpy dtype";
    case Kind::kOpaque:
      return "object";
  }
  return "?";
}

namespace {

Ref make(Kind k) {
  auto o = std::make_shared<Object>();
  o->kind = k;
  return o;
}

bool is_text(const Ref& o) { return o && (o->kind == Kind::kStr || o->kind == Kind::kBytes); }

// UTF-8 text whose code points are all below 256 -> those bytes (how Python 3 pickles bytes at
// protocol 2: _codecs.encode(text, "latin1")).
std::string latin1_from_utf8(const std::string& u, const std::string& name) {
  std::string out;
  out.reserve(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    const auto b = static_cast<uint8_t>(u[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
    } else if ((b & 0xE0) == 0xC0 && i + 1 < u.size()) {
      const uint32_t cp = ((b & 0x1Fu) << 6) | (static_cast<uint8_t>(u[i + 1]) & 0x3Fu);
      SDLORA_CHECK(cp < 256, "pickle ", name, ": latin1 text holds code point ", cp);
      out.push_back(static_cast<char>(cp));
      ++i;
    } else {
      SDLORA_THROW("pickle ", name, ": latin1 text is not valid two-byte UTF-8");
    }
  }
  return out;
}

class Machine {
 public:
  Machine(const std::vector<uint8_t>& b, const std::string& name) : b_(b), name_(name) {}

  Ref run() {
    while (!step(u8())) {
    }
    SDLORA_CHECK(stack_.size() == 1, "pickle ", name_, ": ", stack_.size(), " values left at STOP");
    return stack_.back();
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    SDLORA_THROW("corrupt pickle ", name_, " at byte ", pos_, ": ", what);
  }
  void need(size_t n) const {
    if (b_.size() - pos_ < n) fail("truncated (needs " + std::to_string(n) + " more bytes)");
  }
  uint8_t u8() {
    need(1);
    return b_[pos_++];
  }
  uint64_t le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(b_[pos_ + k]) << (8 * k);
    pos_ += n;
    return v;
  }
  std::string take(uint64_t n) {
    if (n > b_.size() - pos_) fail("a string of " + std::to_string(n) + " bytes runs past the end");
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  std::string line() {
    const size_t start = pos_;
    while (pos_ < b_.size() && b_[pos_] != '\n') ++pos_;
    if (pos_ >= b_.size()) fail("unterminated text line");
    std::string s(reinterpret_cast<const char*>(b_.data() + start), pos_ - start);
    ++pos_;
    return s;
  }

  Ref pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail("stack underflow");
    Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref& top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Ref> pop_to_mark() {
    if (marks_.empty()) fail("no MARK");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void push(Ref r) { stack_.push_back(std::move(r)); }
  void push_int(int64_t v) {
    Ref o = make(Kind::kInt);
    o->i = v;
    push(o);
  }
  void push_text(Kind k, std::string s) {
    Ref o = make(k);
    o->s = std::move(s);
    push(o);
  }
  uint64_t text_index() {
    const std::string t = line();
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size())
      fail("bad memo index '" + t.substr(0, 40) + "' (expected a decimal number below 2^64)");
    return v;
  }
  void memo_put(uint64_t key) {
    Ref& v = top();
    if (memo_.size() >= kMaxMemo && memo_.find(key) == memo_.end())
      fail("more than " + std::to_string(kMaxMemo) + " memo entries");
    memo_[key] = v;
  }
  // Makes `child` an element of the container `parent` (not yet held by another, so no cycle
  // can form) and keeps the nesting within kMaxDepth.
  void adopt(Object& parent, const Ref& child) {
    if (child.get() == &parent) fail("a container holds itself");
    if (parent.held) fail("a container is modified after another container holds it (a cycle?)");
    if (child->height >= kMaxDepth)
      fail("containers nested deeper than " + std::to_string(kMaxDepth) + " levels");
    child->held = true;
    parent.height = std::max(parent.height, child->height + 1);
  }
  Ref make_container(Kind k, std::vector<Ref> items) {
    Ref o = make(k);
    for (const Ref& r : items) adopt(*o, r);
    o->items = std::move(items);
    return o;
  }
  Ref memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " was never stored");
    return it->second;
  }

  // Applies a global to its arguments: the few builders we understand, else an inert object.
  Ref reduce(const Ref& fn, const Ref& args) {
    if (!fn || fn->kind != Kind::kGlobal) fail("REDUCE of a non-global callable");
    if (!args || args->kind != Kind::kTuple) fail("REDUCE arguments are not a tuple");
    const std::string& g = fn->s;
    const auto& a = args->items;
    if (g == "numpy.core.multiarray._reconstruct" || g == "numpy._core.multiarray._reconstruct") {
      return make(Kind::kArray);  // filled by BUILD
    }
    if (g == "numpy.dtype") {
      if (a.empty() || !is_text(a[0])) fail("numpy.dtype without a type string");
      Ref d = make(Kind::kDType);
      d->dtype = a[0]->s;
      return d;
    }
    if (g == "_codecs.encode") {
      if (a.empty() || a[0]->kind != Kind::kStr) fail("_codecs.encode without text");
      Ref o = make(Kind::kBytes);
      o->s = latin1_from_utf8(a[0]->s, name_);
      return o;
    }
    if ((g == "builtins.bytes" || g == "__builtin__.bytes") && a.empty()) return make(Kind::kBytes);
    if (g == "numpy.core.numeric._frombuffer" || g == "numpy._core.numeric._frombuffer") {
      if (a.size() < 3 || !is_text(a[0]) || a[1]->kind != Kind::kDType ||
          a[2]->kind != Kind::kTuple)
        fail("numpy _frombuffer with unexpected arguments");
      Ref arr = make(Kind::kArray);
      arr->raw = a[0]->s;
      arr->dtype = a[1]->dtype;
      arr->byte_order = a[1]->byte_order;
      for (const Ref& d : a[2]->items) arr->shape.push_back(d->i);
      if (a.size() > 3 && is_text(a[3])) arr->fortran_order = a[3]->s == "F";
      return arr;
    }
    Ref o = make(Kind::kOpaque);
    o->s = g;
    return o;
  }

  void build(Ref& obj, const Ref& state) {
    if (obj->kind == Kind::kArray) {
      // (version, shape, dtype, is_fortran, raw data)
      if (!state || state->kind != Kind::kTuple || state->items.size() != 5)
        fail("numpy array state is not a 5-tuple");
      const auto& st = state->items;
      if (st[1]->kind != Kind::kTuple) fail("numpy array shape is not a tuple");
      obj->shape.clear();
      for (const Ref& d : st[1]->items) obj->shape.push_back(d->i);
      if (st[2]->kind != Kind::kDType) fail("numpy array dtype is not a dtype");
      obj->dtype = st[2]->dtype;
      obj->byte_order = st[2]->byte_order;
      obj->fortran_order = st[3]->i != 0;
      if (!is_text(st[4]))
        fail("numpy array data is a " + std::string(kind_name(st[4]->kind)) + ", not raw bytes");
      obj->raw = st[4]->kind == Kind::kStr ? latin1_from_utf8(st[4]->s, name_) : st[4]->s;
    } else if (obj->kind == Kind::kDType) {
      // (version, byte order, ...)
      if (state && state->kind == Kind::kTuple && state->items.size() >= 2 &&
          is_text(state->items[1]) && !state->items[1]->s.empty())
        obj->byte_order = state->items[1]->s[0];
    }
    // Other objects keep no state: nothing we read depends on it.
  }

  // Executes one opcode; true at STOP.
  bool step(uint8_t op) {
    switch (op) {
      case 0x80:
        u8();
        return false;  // PROTO
      case 0x95:
        le(8);
        return false;  // FRAME
      case '.':
        return true;  // STOP
      case '(':
        marks_.push_back(stack_.size());
        return false;  // MARK
      case '0':
        pop();
        return false;  // POP
      case '1':
        pop_to_mark();
        return false;  // POP_MARK
      case '2':
        push(top());
        return false;  // DUP
      case 'N':
        push(make(Kind::kNone));
        return false;  // NONE
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        Ref o = make(Kind::kBool);
        o->i = op == 0x88;
        push(o);
        return false;
      }
      case 'J':
        push_int(static_cast<int32_t>(le(4)));
        return false;  // BININT
      case 'K':
        push_int(static_cast<int64_t>(le(1)));
        return false;  // BININT1
      case 'M':
        push_int(static_cast<int64_t>(le(2)));
        return false;  // BININT2
      case 0x8a:
      case 0x8b: {  // LONG1, LONG4: little-endian two's complement
        const uint64_t n = op == 0x8a ? le(1) : le(4);
        if (n > 8) fail("integer of " + std::to_string(n) + " bytes does not fit 64 bits");
        uint64_t v = n ? le(static_cast<size_t>(n)) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1u) v |= ~uint64_t{0} << (8 * n);
        push_int(static_cast<int64_t>(v));
        return false;
      }
      case 'I':
      case 'L': {  // INT, LONG (text); "I01"/"I00" are True/False in protocol 0
        std::string t = line();
        if (!t.empty() && t.back() == 'L') t.pop_back();
        if (op == 'I' && (t == "01" || t == "00")) {
          Ref o = make(Kind::kBool);
          o->i = t == "01";
          push(o);
        } else {
          try {
            push_int(std::stoll(t));
          } catch (const std::exception&) {
            fail("bad integer text '" + t + "'");
          }
        }
        return false;
      }
      case 'G': {  // BINFLOAT, big-endian
        need(8);
        uint64_t v = 0;
        for (int k = 0; k < 8; ++k) v = (v << 8) | b_[pos_ + k];
        pos_ += 8;
        Ref o = make(Kind::kFloat);
        std::memcpy(&o->f, &v, 8);
        push(o);
        return false;
      }
      case 'T':
        push_text(Kind::kBytes, take(le(4)));
        return false;  // BINSTRING (Python 2 str)
      case 'U':
        push_text(Kind::kBytes, take(le(1)));
        return false;  // SHORT_BINSTRING
      case 'X':
        push_text(Kind::kStr, take(le(4)));
        return false;  // BINUNICODE
      case 0x8c:
        push_text(Kind::kStr, take(le(1)));
        return false;  // SHORT_BINUNICODE
      case 0x8d:
        push_text(Kind::kStr, take(le(8)));
        return false;  // BINUNICODE8
      case 'B':
        push_text(Kind::kBytes, take(le(4)));
        return false;  // BINBYTES
      case 'C':
        push_text(Kind::kBytes, take(le(1)));
        return false;  // SHORT_BINBYTES
      case 0x8e:
      case 0x96:
        push_text(Kind::kBytes, take(le(8)));
        return false;  // BINBYTES8, BYTEARRAY8
      case ']':
        push(make(Kind::kList));
        return false;  // EMPTY_LIST
      case ')':
        push(make(Kind::kTuple));
        return false;  // EMPTY_TUPLE
      case '}':
        push(make(Kind::kDict));
        return false;  // EMPTY_DICT
      case 'l':
      case 't':  // LIST, TUPLE
        push(make_container(op == 'l' ? Kind::kList : Kind::kTuple, pop_to_mark()));
        return false;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<Ref> items(op - 0x84u);
        for (size_t k = items.size(); k-- > 0;) items[k] = pop();
        push(make_container(Kind::kTuple, std::move(items)));
        return false;
      }
      case 'a': {  // APPEND
        Ref v = pop();
        Ref& l = top();
        if (l->kind != Kind::kList) fail("APPEND to a " + std::string(kind_name(l->kind)));
        adopt(*l, v);
        l->items.push_back(v);
        return false;
      }
      case 'e': {  // APPENDS
        std::vector<Ref> items = pop_to_mark();
        Ref& l = top();
        if (l->kind != Kind::kList) fail("APPENDS to a " + std::string(kind_name(l->kind)));
        for (const Ref& v : items) adopt(*l, v);
        l->items.insert(l->items.end(), items.begin(), items.end());
        return false;
      }
      case 'd':
      case 'u': {  // DICT, SETITEMS
        std::vector<Ref> kv = pop_to_mark();
        if (kv.size() % 2) fail("odd number of dict keys and values");
        Ref d = op == 'd' ? make(Kind::kDict) : top();
        if (d->kind != Kind::kDict) fail("SETITEMS on a " + std::string(kind_name(d->kind)));
        for (const Ref& r : kv) adopt(*d, r);
        for (size_t k = 0; k < kv.size(); k += 2) d->dict.emplace_back(kv[k], kv[k + 1]);
        if (op == 'd') push(d);
        return false;
      }
      case 's': {  // SETITEM
        Ref v = pop();
        Ref k = pop();
        Ref& d = top();
        if (d->kind != Kind::kDict) fail("SETITEM on a " + std::string(kind_name(d->kind)));
        adopt(*d, k);
        adopt(*d, v);
        d->dict.emplace_back(k, v);
        return false;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = line();
        std::string qual = line();
        push_text(Kind::kGlobal, module + "." + qual);
        return false;
      }
      case 0x93: {  // STACK_GLOBAL
        Ref qual = pop();
        Ref module = pop();
        if (!is_text(qual) || !is_text(module)) fail("STACK_GLOBAL of non-strings");
        push_text(Kind::kGlobal, module->s + "." + qual->s);
        return false;
      }
      case 'R': {  // REDUCE
        Ref args = pop();
        Ref fn = pop();
        push(reduce(fn, args));
        return false;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        Ref args = pop();
        Ref cls = pop();
        push(reduce(cls, args));
        return false;
      }
      case 'b': {  // BUILD
        Ref state = pop();
        build(top(), state);
        return false;
      }
      case 'p':
        memo_put(text_index());
        return false;  // PUT
      case 'q':
        memo_put(le(1));
        return false;  // BINPUT
      case 'r':
        memo_put(le(4));
        return false;  // LONG_BINPUT
      case 0x94:
        memo_put(memo_.size());
        return false;  // MEMOIZE
      case 'g':
        push(memo_get(text_index()));
        return false;  // GET
      case 'h':
        push(memo_get(le(1)));
        return false;  // BINGET
      case 'j':
        push(memo_get(le(4)));
        return false;  // LONG_BINGET
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", op);
        --pos_;
        fail(std::string("unsupported opcode ") + hex);
      }
    }
  }

  const std::vector<uint8_t>& b_;
  const std::string& name_;
  size_t pos_ = 0;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
};

}  // namespace

Ref load(const std::vector<uint8_t>& bytes, const std::string& name) {
  SDLORA_CHECK(!bytes.empty(), "empty pickle file ", name);
  return Machine(bytes, name).run();
}

Ref find(const Ref& dict, const std::string& key) {
  if (!dict || dict->kind != Kind::kDict) return nullptr;
  for (const auto& [k, v] : dict->dict)
    if (is_text(k) && k->s == key) return v;
  return nullptr;
}

Ref get(const Ref& dict, const std::string& key, const std::string& name) {
  SDLORA_CHECK(dict && dict->kind == Kind::kDict, "pickle ", name, " does not hold a dict (found ",
               dict ? kind_name(dict->kind) : "nothing", ")");
  Ref v = find(dict, key);
  SDLORA_CHECK(v != nullptr, "pickle ", name, " has no entry '", key, "'");
  return v;
}

std::vector<int64_t> to_int_vector(const Ref& obj, const std::string& what) {
  SDLORA_CHECK(obj != nullptr, what, ": missing");
  std::vector<int64_t> out;
  if (obj->kind == Kind::kList || obj->kind == Kind::kTuple) {
    for (const Ref& e : obj->items) {
      SDLORA_CHECK(e->kind == Kind::kInt || e->kind == Kind::kBool, what, ": holds a ",
                   kind_name(e->kind), ", expected ints");
      out.push_back(e->i);
    }
    return out;
  }
  SDLORA_CHECK(obj->kind == Kind::kArray, what, ": a ", kind_name(obj->kind),
               ", expected a list of ints");
  const std::string& t = obj->dtype;
  SDLORA_CHECK(t.size() == 2 && (t[0] == 'u' || t[0] == 'i') &&
                   (t[1] == '1' || t[1] == '2' || t[1] == '4' || t[1] == '8'),
               what, ": numpy dtype '", t, "' is not an integer type");
  SDLORA_CHECK(obj->byte_order != '>', what, ": big-endian numpy arrays are not supported");
  const size_t width = static_cast<size_t>(t[1] - '0');
  SDLORA_CHECK(obj->raw.size() % width == 0, what, ": ", obj->raw.size(), " bytes for ", width,
               "-byte elements");
  const size_t n = obj->raw.size() / width;
  for (size_t k = 0; k < n; ++k) {
    uint64_t v = 0;
    for (size_t j = 0; j < width; ++j)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(obj->raw[k * width + j])) << (8 * j);
    if (t[0] == 'i' && width < 8 && ((v >> (8 * width - 1)) & 1u)) v |= ~uint64_t{0} << (8 * width);
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

std::vector<std::string> to_string_vector(const Ref& obj, const std::string& what) {
  SDLORA_CHECK(obj != nullptr, what, ": missing");
  SDLORA_CHECK(obj->kind == Kind::kList || obj->kind == Kind::kTuple, what, ": a ",
               kind_name(obj->kind), ", expected a list of strings");
  std::vector<std::string> out;
  for (const Ref& e : obj->items) {
    SDLORA_CHECK(is_text(e), what, ": holds a ", kind_name(e->kind), ", expected strings");
    out.push_back(e->s);
  }
  return out;
}

}  // namespace sdlora::data::pickle
