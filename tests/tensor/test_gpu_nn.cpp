// CUDA against the CPU for the network kernels: softmax and log-softmax (forward, backward),
// LayerNorm (forward with its statistics, backward with dw/db), cross-entropy with dloss read
// on the device, input image conversion and the upload ring. Rows short enough for a warp each and
// long enough for a block each.
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops.h"
#include "tensor/upload.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

Tolerance nn_tol(DType dtype) {
  return dtype == DType::kBFloat16 ? Tolerance{1e-2, 2e-3} : Tolerance{2e-5, 2e-6};
}

const Shape kRowShapes[] = {{1, 1},    {3, 5},    {12, 197, 197}, {7, 1024},
                            {3, 1025}, {2, 5000}, {4, 33},        {1, 70000}};

TEST(GpuSoftmax, ForwardAndBackwardMatchCpu) {
  SDLORA_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dtype : {DType::kFloat32, DType::kBFloat16})
    for (const Shape& shape : kRowShapes)
      for (bool log : {false, true}) {
        const Tolerance tol = nn_tol(dtype);
        const std::string tag = std::string(log ? "log_softmax " : "softmax ") + dtype_name(dtype) +
                                " " + shape_str(shape);
        const Pair x = random_pair(shape, seed++, dtype, -8, 8);
        const Tensor yg = log ? log_softmax(x.gpu) : softmax(x.gpu);
        const Tensor yc = log ? log_softmax(x.cpu) : softmax(x.cpu);
        EXPECT_TRUE(all_close(yg, yc, tol.rtol, tol.atol, tag));
        // Backward from the same y and dy on both sides.
        const Pair y = pair_of(yc);
        const Pair dy = random_pair(shape, seed++, dtype, -1, 1);
        const Tensor dxg =
            log ? log_softmax_backward(y.gpu, dy.gpu) : softmax_backward(y.gpu, dy.gpu);
        const Tensor dxc =
            log ? log_softmax_backward(y.cpu, dy.cpu) : softmax_backward(y.cpu, dy.cpu);
        EXPECT_TRUE(all_close(dxg, dxc, tol.rtol, tol.atol, tag + " backward"));
      }
}

TEST(GpuSoftmax, LargeLogitsStayFinite) {
  SDLORA_REQUIRE_GPU();
  const Pair x = random_pair({5, 300}, 40, DType::kFloat32, 1000, 1010);
  const Tolerance tol = nn_tol(DType::kFloat32);
  EXPECT_TRUE(
      all_close(softmax(x.gpu), softmax(x.cpu), tol.rtol, tol.atol, "softmax of large logits"));
  EXPECT_TRUE(all_close(log_softmax(x.gpu), log_softmax(x.cpu), tol.rtol, tol.atol,
                        "log_softmax of large logits"));
}

struct LayerNormCase {
  Shape shape;
  DType x_dtype, w_dtype;
};

TEST(GpuLayerNorm, ForwardAndBackwardMatchCpu) {
  SDLORA_REQUIRE_GPU();
  const LayerNormCase cases[] = {
      {{1, 1}, DType::kFloat32, DType::kFloat32},
      {{5, 1}, DType::kFloat32, DType::kFloat32},
      {{3, 5}, DType::kFloat32, DType::kFloat32},
      {{197, 768}, DType::kFloat32, DType::kFloat32},
      {{2, 197, 768}, DType::kFloat32, DType::kFloat32},
      {{1, 3000}, DType::kFloat32, DType::kFloat32},
      {{4, 2000}, DType::kFloat32, DType::kFloat32},
      {{37, 7000}, DType::kFloat32, DType::kFloat32},  // column accumulators beyond shared memory
      {{3000, 24}, DType::kFloat32, DType::kFloat32},  // more rows than backward blocks
      {{2, 197, 768}, DType::kBFloat16, DType::kBFloat16},
      {{2, 197, 768}, DType::kBFloat16, DType::kFloat32},  // bfloat16 activations, float32 weight
      {{3, 1500}, DType::kBFloat16, DType::kFloat32},
  };
  uint64_t seed = 100;
  for (const LayerNormCase& c : cases) {
    const int64_t C = c.shape.back();
    const int64_t rows = shape_numel(c.shape) / C;
    const std::string tag = std::string("layernorm x ") + dtype_name(c.x_dtype) + " w " +
                            dtype_name(c.w_dtype) + " " + shape_str(c.shape);
    const Pair x = random_pair(c.shape, seed++, c.x_dtype, -3, 3);
    const Pair w = random_pair({C}, seed++, c.w_dtype, 0.5, 1.5);
    const Pair b = random_pair({C}, seed++, c.w_dtype, -0.5, 0.5);
    const LayerNormOut g = layernorm(x.gpu, w.gpu, b.gpu, 1e-6);
    const LayerNormOut r = layernorm(x.cpu, w.cpu, b.cpu, 1e-6);
    const Tolerance tol = nn_tol(c.x_dtype);
    EXPECT_TRUE(all_close(g.y, r.y, tol.rtol, tol.atol, tag + " y"));
    EXPECT_TRUE(all_close(g.mean, r.mean, 1e-5, 1e-6, tag + " mean"));
    // rstd of a constant row is 1/sqrt(eps): the variance's rounding is all that is left.
    EXPECT_TRUE(all_close(g.rstd, r.rstd, C == 1 ? 1e-3 : 1e-4, 1e-5, tag + " rstd"));

    // Backward from the CPU statistics on both sides, so only the backward kernels differ.
    const Pair dy = random_pair(c.shape, seed++, c.x_dtype, -1, 1);
    const Pair mean = pair_of(r.mean), rstd = pair_of(r.rstd);
    const LayerNormGrads gg = layernorm_backward(dy.gpu, x.gpu, w.gpu, mean.gpu, rstd.gpu);
    const LayerNormGrads gr = layernorm_backward(dy.cpu, x.cpu, w.cpu, mean.cpu, rstd.cpu);
    const Tolerance dx_tol =
        c.x_dtype == DType::kBFloat16 ? Tolerance{1e-2, 2e-3} : Tolerance{1e-4, 1e-5};
    EXPECT_TRUE(all_close(gg.dx, gr.dx, dx_tol.rtol, dx_tol.atol, tag + " dx"));
    const Tolerance p_tol = sum_tol(c.w_dtype, rows);
    EXPECT_TRUE(all_close(gg.dw, gr.dw, p_tol.rtol, p_tol.atol, tag + " dw"));
    EXPECT_TRUE(all_close(gg.db, gr.db, p_tol.rtol, p_tol.atol, tag + " db"));
    EXPECT_EQ(gg.dw.dtype(), c.w_dtype);
  }
}

TEST(GpuLayerNorm, BackwardIsDeterministic) {
  SDLORA_REQUIRE_GPU();
  const Tensor x = random_tensor({1000, 768}, 7, -2, 2, DType::kFloat32, gpu());
  const Tensor w = random_tensor({768}, 8, 0.5, 1.5, DType::kFloat32, gpu());
  const Tensor b = random_tensor({768}, 9, -1, 1, DType::kFloat32, gpu());
  const Tensor dy = random_tensor({1000, 768}, 10, -1, 1, DType::kFloat32, gpu());
  const LayerNormOut f = layernorm(x, w, b, 1e-6);
  const LayerNormGrads g1 = layernorm_backward(dy, x, w, f.mean, f.rstd);
  const LayerNormGrads g2 = layernorm_backward(dy, x, w, f.mean, f.rstd);
  EXPECT_TRUE(same_bits(g1.dw, g2.dw, "dw run to run"));
  EXPECT_TRUE(same_bits(g1.db, g2.db, "db run to run"));
  EXPECT_TRUE(same_bits(g1.dx, g2.dx, "dx run to run"));
}

TEST(GpuCrossEntropy, LossAndBackwardWithDeviceDloss) {
  SDLORA_REQUIRE_GPU();
  const Shape shapes[] = {{1, 1}, {5, 1}, {3, 5}, {128, 100}, {197, 1000}, {64, 2000}, {2, 70000}};
  uint64_t seed = 200;
  for (DType dtype : {DType::kFloat32, DType::kBFloat16})
    for (DType label_dtype : {DType::kInt32, DType::kInt64})
      for (const Shape& shape : shapes) {
        const int64_t B = shape[0], C = shape[1];
        const std::string tag = std::string("cross_entropy ") + dtype_name(dtype) + " labels " +
                                dtype_name(label_dtype) + " " + shape_str(shape);
        const Pair logits = random_pair(shape, seed++, dtype, -5, 5);
        // Labels in [0, C), including the last class.
        Tensor labels = cast(random_tensor({B}, seed++, 0, static_cast<double>(C)), label_dtype);
        const Pair lab = pair_of(labels);
        const Tensor loss_g = cross_entropy(logits.gpu, lab.gpu);
        const Tensor loss_c = cross_entropy(logits.cpu, lab.cpu);
        EXPECT_EQ(loss_g.shape(), Shape{});
        EXPECT_EQ(loss_g.dtype(), DType::kFloat32);
        EXPECT_TRUE(all_close(loss_g, loss_c, 1e-5, 1e-6, tag + " loss"));

        const Tensor dloss_g = Tensor::full({}, 0.7, DType::kFloat32, gpu());
        const Tensor dloss_c = Tensor::full({}, 0.7, DType::kFloat32, Device::cpu());
        const Tensor dg = cross_entropy_backward(logits.gpu, lab.gpu, dloss_g);
        const Tensor dc = cross_entropy_backward(logits.cpu, lab.cpu, dloss_c);
        const Tolerance tol =
            dtype == DType::kBFloat16 ? Tolerance{1e-2, 1e-4} : Tolerance{1e-5, 1e-8};
        EXPECT_TRUE(all_close(dg, dc, tol.rtol, tol.atol, tag + " dlogits"));
      }
}

TEST(GpuCrossEntropy, DlossProducedOnTheDevice) {
  SDLORA_REQUIRE_GPU();
  // dloss as the output of another device op: the chain runs without reading it on the host.
  const Pair logits = random_pair({16, 10}, 300, DType::kFloat32, -3, 3);
  const Pair labels = pair_of(cast(random_tensor({16}, 301, 0, 10), DType::kInt64));
  const Tensor dloss_g = mul(Tensor::full({1}, 2.0, DType::kFloat32, gpu()), 1.5);
  const Tensor dloss_c = Tensor::full({1}, 3.0, DType::kFloat32, Device::cpu());
  EXPECT_TRUE(all_close(cross_entropy_backward(logits.gpu, labels.gpu, dloss_g),
                        cross_entropy_backward(logits.cpu, labels.cpu, dloss_c), 1e-5, 1e-8,
                        "dlogits"));
}

TEST(GpuCrossEntropy, LabelOutOfRangeGivesNaNNotACrash) {
  SDLORA_REQUIRE_GPU();
  const Tensor logits = random_tensor({3, 4}, 400, -1, 1, DType::kFloat32, gpu());
  const Tensor labels = Tensor::from_vector<int64_t>({0, 4, -1}, {3}, gpu());
  const Tensor loss = cross_entropy(logits, labels);
  EXPECT_TRUE(std::isnan(loss.item()));
  const Tensor d =
      cross_entropy_backward(logits, labels, Tensor::full({}, 1.0, DType::kFloat32, gpu()));
  const std::vector<float> v = d.to_vector<float>();
  for (int j = 0; j < 4; ++j)
    EXPECT_FALSE(std::isnan(v[static_cast<size_t>(j)])) << "row 0 is valid";
  for (int j = 4; j < 12; ++j)
    EXPECT_TRUE(std::isnan(v[static_cast<size_t>(j)])) << "element " << j;
  synchronize(gpu());  // the device is still healthy
}

TEST(GpuImages, NormalizeAndTheUploadRingMatchCpu) {
  SDLORA_REQUIRE_GPU();
  const std::vector<float> mean = {0.485f, 0.456f, 0.406f}, std = {0.229f, 0.224f, 0.225f};
  UploadRing ring(gpu(), 2);
  for (int round = 0; round < 5; ++round) {  // slots reused, and grown by the larger batches
    const int64_t b = 1 + round % 3;
    std::vector<uint8_t> v(static_cast<size_t>(b * 13 * 11 * 3));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 37 + round * 11) % 256);
    const Tensor host = Tensor::from_vector(v, {b, 13, 11, 3});
    const Tensor want = normalize_images(host, mean, std);
    // The same float operations as the host: equal, not merely close.
    EXPECT_EQ(normalize_images(host.to(gpu()), mean, std).to_vector<float>(),
              want.to_vector<float>());
    UploadRing::Ticket t = ring.upload(host);
    const Tensor got =
        ring.consume(t, [&](const Tensor& u8) { return normalize_images(u8, mean, std); });
    ASSERT_TRUE(got.device().is_cuda());
    EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>()) << "round " << round;
  }
  UploadRing::Ticket dropped = ring.upload(Tensor::zeros({4}, DType::kUInt8));
  ring.abandon(dropped);
  synchronize(gpu());
}

}  // namespace
}  // namespace sdlora::test
