// mc_grouped_gemm_desc.bucket_max_rows: the descriptor's newest field. Older callers (a struct_size that ends
// before it) keep working; every misuse names the entry and the rule, and a rejected descriptor creates no plan.
#include <gtest/gtest.h>

#include <cstddef>

#include "test_support.hpp"

namespace {

mc_grouped_gemm_plan create(mc_context context, const mc_grouped_gemm_desc& desc, mc_status* status) {
  mc_grouped_gemm_plan plan = nullptr;
  *status = mc_grouped_gemm_plan_create(context, &desc, &plan);
  return plan;
}

}  // namespace

TEST(BucketThresholds, DescriptorsWithoutTheFieldAreAcceptedAsTheTable) {
  mctest::Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(4, 256, 256, 64);
  desc.bucket_max_rows[0] = 7;  // beyond the old struct_size: must be ignored
  desc.struct_size = static_cast<uint32_t>(offsetof(mc_grouped_gemm_desc, bucket_max_rows));
  mc_status status = MC_STATUS_INTERNAL;
  mc_grouped_gemm_plan plan = create(context, desc, &status);
  ASSERT_EQ(status, MC_STATUS_OK) << mctest::last_error();
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
  desc.struct_size = static_cast<uint32_t>(offsetof(mc_grouped_gemm_desc, bucket_max_rows)) + 4;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_STRUCT_SIZE,
                   "desc->struct_size");
}

TEST(BucketThresholds, ForcingValuesAreAccepted) {
  mctest::Context context(1);
  for (auto values : {std::pair{-1, -1}, std::pair{100000, -1}, std::pair{-1, 100000}, std::pair{40, 64},
                      std::pair{32, 32}}) {
    mc_grouped_gemm_desc desc = mctest::gemm_desc(4, 256, 256, 64);
    desc.strategy = MC_STRATEGY_EXPERT_SPECIALIZED;
    desc.bucket_max_rows[0] = values.first;
    desc.bucket_max_rows[1] = values.second;
    mc_status status = MC_STATUS_INTERNAL;
    mc_grouped_gemm_plan plan = create(context, desc, &status);
    ASSERT_EQ(status, MC_STATUS_OK) << values.first << "," << values.second << ": " << mctest::last_error();
    EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
  }
}

TEST(BucketThresholds, MisuseIsRejectedWithTheEntryAndTheRule) {
  mctest::Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(4, 256, 256, 64);
  mc_grouped_gemm_plan plan = nullptr;
  desc.bucket_max_rows[2] = 5;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_ARGUMENT,
                   "desc->bucket_max_rows[2] = 5 is reserved");
  desc.bucket_max_rows[2] = 0;
  desc.bucket_max_rows[0] = 32;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_ARGUMENT,
                   "give both swapped thresholds or neither");
  desc.bucket_max_rows[1] = 16;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_ARGUMENT,
                   "desc->bucket_max_rows[1] = 16 is below desc->bucket_max_rows[0] = 32");
  EXPECT_EQ(plan, nullptr);
}
