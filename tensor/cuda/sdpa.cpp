// cuDNN SDPA through cudnn-frontend (see sdpa.h): one forward and one backward graph per shape,
// built on first use and cached; q, k and v are strided views of qkv (head h of image b at
// column part * C + h * hd, row pitch 3C), o and do use the token layout (row pitch C).
#include "tensor/cuda/sdpa.h"

#ifndef SDLORA_WITH_CUDNN_FRONTEND

namespace sdlora::cuda {
bool sdpa_supported(const Tensor&, int64_t) { return false; }
void sdpa_forward(const Tensor&, int64_t, float, Tensor&, Tensor&) {
  SDLORA_THROW("sdpa_forward: built without cudnn-frontend (scripts/fetch-cudnn-frontend.sh)");
}
void sdpa_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, float,
                   Tensor&) {
  SDLORA_THROW("sdpa_backward: built without cudnn-frontend (scripts/fetch-cudnn-frontend.sh)");
}
}  // namespace sdlora::cuda

#else

#include <cudnn_frontend.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>

#include "tensor/cuda/context.h"

namespace sdlora::cuda {
namespace {

namespace fe = cudnn_frontend;

enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV };

struct Shape4 {
  int64_t B, N, H, hd, C;
};

Shape4 shape_of(const Tensor& qkv, int64_t heads) {
  const int64_t C = qkv.size(2) / 3;
  return {qkv.size(0), qkv.size(1), heads, C / heads, C};
}

// (B, H, N, hd) dims with the strides of a part of qkv, or of the (B, N, C) token layout.
fe::graph::Tensor_attributes qkv_part(const Shape4& s, const char* name, int64_t uid) {
  return fe::graph::Tensor_attributes()
      .set_name(name)
      .set_uid(uid)
      .set_dim({s.B, s.H, s.N, s.hd})
      .set_stride({s.N * 3 * s.C, s.hd, 3 * s.C, 1});
}
fe::graph::Tensor_attributes tokens(const Shape4& s, const char* name, int64_t uid) {
  return fe::graph::Tensor_attributes()
      .set_name(name)
      .set_uid(uid)
      .set_dim({s.B, s.H, s.N, s.hd})
      .set_stride({s.N * s.C, s.hd, s.C, 1});
}
fe::graph::Tensor_attributes stats_attr(const Shape4& s) {
  return fe::graph::Tensor_attributes()
      .set_name("stats")
      .set_uid(kStats)
      .set_dim({s.B, s.H, s.N, 1})
      .set_stride({s.H * s.N, s.N, 1, 1})
      .set_data_type(fe::DataType_t::FLOAT);
}

std::shared_ptr<fe::graph::Graph> new_graph() {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  return g;
}

std::shared_ptr<fe::graph::Graph> build_forward(const Shape4& s, float scale) {
  auto g = new_graph();
  auto q = g->tensor(qkv_part(s, "q", kQ));
  auto k = g->tensor(qkv_part(s, "k", kK));
  auto v = g->tensor(qkv_part(s, "v", kV));
  auto attrs =
      fe::graph::SDPA_attributes().set_name("sdpa").set_generate_stats(true).set_attn_scale(scale);
  auto [o, stats] = g->sdpa(q, k, v, attrs);
  o->set_output(true)
      .set_uid(kO)
      .set_dim({s.B, s.H, s.N, s.hd})
      .set_stride({s.N * s.C, s.hd, s.C, 1});
  stats->set_output(true)
      .set_uid(kStats)
      .set_data_type(fe::DataType_t::FLOAT)
      .set_dim({s.B, s.H, s.N, 1})
      .set_stride({s.H * s.N, s.N, 1, 1});
  return g;
}

std::shared_ptr<fe::graph::Graph> build_backward(const Shape4& s, float scale) {
  auto g = new_graph();
  auto q = g->tensor(qkv_part(s, "q", kQ));
  auto k = g->tensor(qkv_part(s, "k", kK));
  auto v = g->tensor(qkv_part(s, "v", kV));
  auto o = g->tensor(tokens(s, "o", kO));
  auto d_o = g->tensor(tokens(s, "do", kDO));
  auto stats = g->tensor(stats_attr(s));
  auto attrs =
      fe::graph::SDPA_backward_attributes().set_name("sdpa_backward").set_attn_scale(scale);
  auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, d_o, stats, attrs);
  const std::pair<std::shared_ptr<fe::graph::Tensor_attributes>, int64_t> outs[] = {
      {dq, kDQ}, {dk, kDK}, {dv, kDV}};
  for (const auto& [t, uid] : outs)
    t->set_output(true)
        .set_uid(uid)
        .set_dim({s.B, s.H, s.N, s.hd})
        .set_stride({s.N * 3 * s.C, s.hd, 3 * s.C, 1});
  return g;
}

// Validates and builds a graph for the handle; false (with the reason kept) when cuDNN has no
// engine for it.
bool finish(fe::graph::Graph& g, cudnnHandle_t handle, std::string& why) {
  fe::error_t e = g.validate();
  if (e.is_good()) e = g.build_operation_graph(handle);
  if (e.is_good()) e = g.create_execution_plans({fe::HeurMode_t::A});
  if (e.is_good()) e = g.check_support(handle);
  if (e.is_good()) e = g.build_plans(handle);
  if (e.is_bad()) why = e.get_message();
  return e.is_good();
}

struct Entry {
  std::shared_ptr<fe::graph::Graph> fwd, bwd;
  bool ok = false;
  std::string why;
};

// (device, B, N, H, hd, scale bits) -> the built pair
using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, uint32_t>;
std::mutex g_mutex;
std::map<Key, Entry> g_cache;

Entry& entry_for(const Tensor& qkv, int64_t heads, float scale) {
  const Shape4 s = shape_of(qkv, heads);
  uint32_t bits = 0;
  std::memcpy(&bits, &scale, sizeof bits);
  const int dev = qkv.device().index;
  const Key key{dev, s.B, s.N, s.H, s.hd, bits};
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) return it->second;
  Entry e;
  set_device(dev);
  cudnnHandle_t handle = cudnn(dev);
  try {
    e.fwd = build_forward(s, scale);
    e.bwd = build_backward(s, scale);
    e.ok = finish(*e.fwd, handle, e.why) && finish(*e.bwd, handle, e.why);
  } catch (const std::exception& ex) {
    e.ok = false;
    e.why = ex.what();
  }
  return g_cache.emplace(key, std::move(e)).first->second;
}

void run(const fe::graph::Graph& g, const Tensor& like, std::unordered_map<int64_t, void*>& pack) {
  int64_t bytes = 0;
  fe::error_t e = g.get_workspace_size(bytes);
  SDLORA_CHECK(e.is_good(), "cuDNN SDPA: workspace size: ", e.get_message());
  Tensor ws = Tensor::empty({std::max<int64_t>(bytes, 1)}, DType::kUInt8, like.device());
  e = g.execute(cudnn(like.device().index), pack, ws.raw_data());
  SDLORA_CHECK(e.is_good(), "cuDNN SDPA: execute failed: ", e.get_message());
}

char* part_ptr(const Tensor& qkv, int64_t part, int64_t C) {
  return static_cast<char*>(qkv.raw_data()) + part * C * static_cast<int64_t>(sizeof(uint16_t));
}

}  // namespace

bool sdpa_supported(const Tensor& qkv, int64_t heads) {
  if (!qkv.defined() || qkv.device().is_cpu() || qkv.dtype() != DType::kBFloat16 ||
      qkv.ndim() != 3 || heads <= 0 || qkv.size(2) % (3 * heads) != 0 || qkv.numel() == 0)
    return false;
  const int64_t hd = qkv.size(2) / (3 * heads);
  if (hd % 8 != 0 || hd > 128) return false;
  return entry_for(qkv, heads, static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))).ok;
}

void sdpa_forward(const Tensor& qkv, int64_t heads, float scale, Tensor& o, Tensor& stats) {
  Entry& e = entry_for(qkv, heads, scale);
  SDLORA_CHECK(e.ok, "cuDNN SDPA: no engine for qkv ", qkv.describe(), ": ", e.why);
  const Shape4 s = shape_of(qkv, heads);
  set_device(qkv.device().index);
  std::unordered_map<int64_t, void*> pack{{kQ, part_ptr(qkv, 0, s.C)},
                                          {kK, part_ptr(qkv, 1, s.C)},
                                          {kV, part_ptr(qkv, 2, s.C)},
                                          {kO, o.raw_data()},
                                          {kStats, stats.raw_data()}};
  run(*e.fwd, qkv, pack);
}

void sdpa_backward(const Tensor& qkv, const Tensor& o, const Tensor& d_o, const Tensor& stats,
                   int64_t heads, float scale, Tensor& dqkv) {
  Entry& e = entry_for(qkv, heads, scale);
  SDLORA_CHECK(e.ok, "cuDNN SDPA: no engine for qkv ", qkv.describe(), ": ", e.why);
  const Shape4 s = shape_of(qkv, heads);
  set_device(qkv.device().index);
  std::unordered_map<int64_t, void*> pack{
      {kQ, part_ptr(qkv, 0, s.C)},   {kK, part_ptr(qkv, 1, s.C)},
      {kV, part_ptr(qkv, 2, s.C)},   {kO, o.raw_data()},
      {kDO, d_o.raw_data()},         {kStats, stats.raw_data()},
      {kDQ, part_ptr(dqkv, 0, s.C)}, {kDK, part_ptr(dqkv, 1, s.C)},
      {kDV, part_ptr(dqkv, 2, s.C)}};
  run(*e.bwd, qkv, pack);
}

}  // namespace sdlora::cuda

#endif  // SDLORA_WITH_CUDNN_FRONTEND
