// The cublas strategy's call shape per run (cublas/cublas_call_choice.hpp): a forced value always wins, and without
// one the measured rule decides: the measured H200 cases on either side of the crossover, and the edge itself.
#include <gtest/gtest.h>

#include "cublas/cublas_call_choice.hpp"

using moecutlass::cublas::Call;
using moecutlass::cublas::choose_call;

TEST(CublasCallChoice, AForcedValueWins) {
  for (int32_t groups : {1, 8, 256}) {
    for (int64_t rows : {int64_t{1}, int64_t{8192}, int64_t{1} << 20}) {
      EXPECT_EQ(choose_call('g', groups, rows, 4096, 7168), Call::kGrouped);
      EXPECT_EQ(choose_call('l', groups, rows, 4096, 7168), Call::kLoop);
    }
  }
}

struct MeasuredCase {
  const char* name;
  int32_t groups;
  int64_t rows;
  int32_t n, k;
  Call faster;  // in the H200 measurement of both call shapes (docs/design/cublas-baseline.md)
};

TEST(CublasCallChoice, PicksTheFasterShapeOfTheMeasuredCases) {
  const MeasuredCase cases[] = {
      {"ds-gate_up-e32-m8", 32, 256, 4096, 7168, Call::kGrouped},
      {"ds-gate_up-e32-m64", 32, 2048, 4096, 7168, Call::kGrouped},
      {"ds-gate_up-e32-m256", 32, 8192, 4096, 7168, Call::kLoop},
      {"ds-down-e32-m64", 32, 2048, 7168, 2048, Call::kGrouped},
      {"ds-down-e32-m256", 32, 8192, 7168, 2048, Call::kLoop},
      {"ds-gate_up-e8-m1024", 8, 8192, 4096, 7168, Call::kLoop},
      {"ds-down-e256-hot", 251, 8192, 7168, 2048, Call::kGrouped},
      {"qwen3-down-e128-t2048", 128, 16384, 4096, 1536, Call::kGrouped},
      {"mixtral-down-e8-t1024", 8, 2048, 4096, 14336, Call::kLoop},
      {"ds-tp8-down-e256-t2048", 256, 16384, 7168, 256, Call::kGrouped},
      {"ds-tp8-down-e256-onehot4096", 1, 4096, 7168, 256, Call::kLoop},
      {"qwen3-gate_up-e128-halfempty2048", 64, 2048, 3072, 4096, Call::kGrouped},
  };
  for (const MeasuredCase& c : cases) {
    EXPECT_EQ(choose_call(0, c.groups, c.rows, c.n, c.k), c.faster) << c.name;
  }
}

TEST(CublasCallChoice, TheCrossoverIsInclusive) {
  // 2 x 1000 x 1000 x 2500 = 5e9 FLOPs in one group: exactly the threshold.
  EXPECT_EQ(choose_call(0, 1, 1000, 1000, 2500), Call::kLoop);
  EXPECT_EQ(choose_call(0, 1, 999, 1000, 2500), Call::kGrouped);
  EXPECT_EQ(choose_call(0, 2, 1000, 1000, 2500), Call::kGrouped) << "the average over the groups counts";
}
