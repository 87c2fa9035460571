// Class orders (numpy's legacy permutation, bit for bit) and the task subsets built on them.
#include <gtest/gtest.h>

#include "data/class_order.h"
#include "data/dataset.h"

namespace sdlora::data {
namespace {

TEST(NumpyRandomState, Mt19937MatchesTheReferenceOutput) {
  // Matsumoto and Nishimura's mt19937ar with init_genrand(5489): first outputs.
  NumpyRandomState rs(5489);
  EXPECT_EQ(rs.next_uint32(), 3499211612u);
  EXPECT_EQ(rs.next_uint32(), 581869302u);
  EXPECT_EQ(rs.next_uint32(), 3890346734u);
}

TEST(NumpyRandomState, PermutationSeed1993Of100) {
  // np.random.RandomState(1993).permutation(100), numpy 1.24.
  const std::vector<int64_t> want = {
      68, 56, 78, 8,  23, 84, 90, 65, 74, 76, 40, 89, 3,  92, 55, 9,  26, 80, 43, 38,
      58, 70, 77, 1,  85, 19, 17, 50, 28, 53, 13, 81, 45, 82, 6,  59, 83, 16, 15, 44,
      91, 41, 72, 60, 79, 52, 20, 10, 31, 54, 37, 95, 14, 71, 96, 98, 97, 2,  64, 66,
      42, 22, 35, 86, 24, 34, 87, 21, 99, 0,  88, 27, 18, 94, 11, 12, 47, 25, 30, 46,
      62, 69, 36, 61, 7,  63, 75, 5,  32, 4,  51, 48, 73, 93, 39, 67, 29, 49, 57, 33};
  EXPECT_EQ(NumpyRandomState(1993).permutation(100), want);
}

TEST(NumpyRandomState, PermutationSeed1995Of200) {
  // np.random.RandomState(1995).permutation(200): the first 40 and the last 10 values.
  const std::vector<int64_t> head = {146, 198, 169, 126, 142, 183, 108, 86, 79,  35,
                                     112, 29,  0,   2,   59,  178, 143, 31, 147, 33,
                                     123, 114, 194, 54,  138, 75,  158, 26, 131, 141,
                                     180, 132, 22,  49,  116, 111, 24,  98, 107, 89};
  const std::vector<int64_t> tail = {9, 62, 156, 52, 84, 157, 69, 179, 166, 164};
  const std::vector<int64_t> p = NumpyRandomState(1995).permutation(200);
  ASSERT_EQ(p.size(), 200u);
  EXPECT_EQ(std::vector<int64_t>(p.begin(), p.begin() + 40), head);
  EXPECT_EQ(std::vector<int64_t>(p.end() - 10, p.end()), tail);
}

TEST(NumpyRandomState, SmallPermutationsAndSuccessiveDraws) {
  EXPECT_EQ(NumpyRandomState(0).permutation(10),
            (std::vector<int64_t>{2, 8, 4, 9, 1, 6, 7, 3, 0, 5}));
  EXPECT_EQ(NumpyRandomState(42).permutation(7), (std::vector<int64_t>{0, 1, 5, 2, 4, 3, 6}));
  EXPECT_EQ(NumpyRandomState(1).permutation(1), (std::vector<int64_t>{0}));
  EXPECT_TRUE(NumpyRandomState(1).permutation(0).empty());
  EXPECT_EQ(NumpyRandomState(0xffffffffu).permutation(12),
            (std::vector<int64_t>{11, 8, 5, 9, 1, 10, 6, 0, 4, 7, 2, 3}));
  // One stream, two permutations: rs = RandomState(5); rs.permutation(5); rs.permutation(6).
  NumpyRandomState rs(5);
  EXPECT_EQ(rs.permutation(5), (std::vector<int64_t>{4, 0, 1, 2, 3}));
  EXPECT_EQ(rs.permutation(6), (std::vector<int64_t>{2, 4, 3, 5, 1, 0}));
}

TEST(ClassOrder, RemapsLabelsToTheirPositionAndCutsTasks) {
  const ClassOrder order(100, 1993, 10, 10);
  EXPECT_EQ(order.num_tasks(), 10);
  EXPECT_EQ(order.order()[0], 68);
  EXPECT_EQ(order.remap(68), 0);
  EXPECT_EQ(order.remap(56), 1);
  EXPECT_EQ(order.remap(33), 99);
  EXPECT_EQ(order.task_begin(3), 30);
  EXPECT_EQ(order.task_end(3), 40);
  EXPECT_EQ(order.task_of(0), 0);
  EXPECT_EQ(order.task_of(39), 3);
  EXPECT_EQ(order.task_of(99), 9);
}

TEST(ClassOrder, FirstTaskAndUnevenLastTask) {
  const ClassOrder a(200, 1995, 40, 20);  // ImageNet-R 9 tasks after a 40-class first one
  EXPECT_EQ(a.num_tasks(), 9);
  EXPECT_EQ(a.task_size(0), 40);
  EXPECT_EQ(a.task_size(8), 20);
  const ClassOrder b(10, -1, 4, 4);  // natural order; 4 + 4 + 2
  EXPECT_EQ(b.order(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  ASSERT_EQ(b.num_tasks(), 3);
  EXPECT_EQ(b.task_size(2), 2);
  EXPECT_EQ(b.task_end(2), 10);
}

TEST(ClassOrder, RejectsBadArguments) {
  EXPECT_THROW(ClassOrder(10, 0, 11, 1), Error);
  EXPECT_THROW(ClassOrder(10, 0, 5, 0), Error);
  EXPECT_THROW(ClassOrder(std::vector<int64_t>{0, 0, 2}, 1, 1), Error);
  EXPECT_THROW(ClassOrder(std::vector<int64_t>{0, 1, 3}, 1, 1), Error);
  const ClassOrder ok(std::vector<int64_t>{2, 0, 1}, 1, 1);
  EXPECT_THROW(ok.task_begin(3), Error);
  EXPECT_THROW(ok.remap(3), Error);
}

// Six classes, two images each (labels 0,0,1,1,...), 1x1 grey images holding their index.
std::shared_ptr<Dataset> toy_dataset() {
  std::vector<uint8_t> px;
  std::vector<int64_t> labels;
  for (int i = 0; i < 12; ++i) {
    px.push_back(static_cast<uint8_t>(i));
    labels.push_back(i / 2);
  }
  return std::make_shared<InMemoryDataset>("toy", "toy.bin", 1, 1, 1, px, labels,
                                           std::vector<std::string>{"a", "b", "c", "d", "e", "f"});
}

TEST(TaskSplits, TrainHoldsTheTaskTestHoldsEverySeenClass) {
  auto ds = toy_dataset();
  const ClassOrder order(std::vector<int64_t>{4, 1, 5, 0, 2, 3}, 2, 2);  // tasks {4,1} {5,0} {2,3}
  EXPECT_EQ(task_train_indices(*ds, order, 0), (std::vector<int64_t>{2, 3, 8, 9}));
  EXPECT_EQ(task_train_indices(*ds, order, 1), (std::vector<int64_t>{0, 1, 10, 11}));
  EXPECT_EQ(task_test_indices(*ds, order, 1), (std::vector<int64_t>{0, 1, 2, 3, 8, 9, 10, 11}));
  EXPECT_EQ(task_test_indices(*ds, order, 2).size(), 12u);

  auto train1 = task_train_set(ds, order, 1);
  ASSERT_EQ(train1->size(), 4);
  // Sample 0 of the subset is dataset sample 0, class 0, at position 3 of the order.
  EXPECT_EQ(train1->label(0), 3);
  EXPECT_EQ(train1->label(2), 2);  // class 5 -> position 2
  EXPECT_EQ(train1->image(2).pixels[0], 10);
  EXPECT_EQ(train1->class_names(), (std::vector<std::string>{"e", "b", "f", "a", "c", "d"}));
  EXPECT_EQ(train1->source(1), "toy.bin record 1");
}

TEST(TaskSplits, ClassCountMismatchIsAnError) {
  auto ds = toy_dataset();
  const ClassOrder order(10, 0, 5, 5);
  EXPECT_THROW(task_train_indices(*ds, order, 0), Error);
}

}  // namespace
}  // namespace sdlora::data
