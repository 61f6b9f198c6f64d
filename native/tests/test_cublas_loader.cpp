// The run-time cuBLAS loader (cublas/cublas_loader.hpp): every failure names what was tried and why, the search
// order, and, where a cuBLAS 12.5+ is installed (the GPU machine), that every entry point resolves and, with a CUDA
// device, that a handle can be created and destroyed through the loaded pointers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cublas/cublas_loader.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {
namespace {

TEST(CublasLoader, AMissingLibraryIsNamedWithTheReason) {
  cublas::Api api;
  std::string error;
  ASSERT_FALSE(cublas::try_load({"libmoecutlass-no-such-cublas.so.99", "/nonexistent/dir/libcublas.so.13"}, api,
                                error));
  EXPECT_NE(error.find("libmoecutlass-no-such-cublas.so.99"), std::string::npos) << error;
  EXPECT_NE(error.find("/nonexistent/dir/libcublas.so.13"), std::string::npos) << error;
  EXPECT_NE(error.find("12.5"), std::string::npos) << error;
  EXPECT_EQ(api.gemm_grouped_batched_ex, nullptr);
  EXPECT_TRUE(api.path.empty());
}

TEST(CublasLoader, ALibraryThatIsNotCublasIsRejected) {
  cublas::Api api;
  std::string error;
  ASSERT_FALSE(cublas::try_load({"libm.so.6"}, api, error));
  EXPECT_NE(error.find("libm.so.6: not cuBLAS"), std::string::npos) << error;
}

TEST(CublasLoader, SearchesSonamesThenCudaHomeThenTheDefaultToolkit) {
  const char* saved = std::getenv("CUDA_HOME");
  const std::string restore = saved != nullptr ? saved : "";
  setenv("CUDA_HOME", "/opt/some-cuda", 1);
  const std::vector<std::string> candidates = cublas::default_candidates();
  if (saved != nullptr) {
    setenv("CUDA_HOME", restore.c_str(), 1);
  } else {
    unsetenv("CUDA_HOME");
  }
  const std::vector<std::string> expected = {"libcublas.so.13",
                                             "libcublas.so.12",
                                             "/opt/some-cuda/lib64/libcublas.so.13",
                                             "/opt/some-cuda/lib64/libcublas.so.12",
                                             "/usr/local/cuda/lib64/libcublas.so.13",
                                             "/usr/local/cuda/lib64/libcublas.so.12"};
  EXPECT_EQ(candidates, expected);
}

TEST(CublasLoader, AnInstalledCublasResolvesEveryEntryPoint) {
  cublas::Api api;
  std::string error;
  if (!cublas::try_load(cublas::default_candidates(), api, error)) {
    GTEST_SKIP() << "no cuBLAS 12.5+ on this machine: " << error;
  }
  std::cout << "cuBLAS " << api.version << " from " << api.path << "\n";
  EXPECT_GE(api.version, cublas::kMinimumVersion);
  EXPECT_FALSE(api.path.empty());
  EXPECT_NE(api.create, nullptr);
  EXPECT_NE(api.destroy, nullptr);
  EXPECT_NE(api.set_stream, nullptr);
  EXPECT_NE(api.set_workspace, nullptr);
  EXPECT_NE(api.status_string, nullptr);
  EXPECT_NE(api.gemm_grouped_batched_ex, nullptr);
  const char* success = api.status_string(cublas::kSuccess);  // cuBLAS 13.1 says "success"
  ASSERT_NE(success, nullptr);
  EXPECT_GT(std::string(success).size(), 0u);

  int32_t devices = 0;
  ASSERT_EQ(mc_get_device_count(&devices), MC_STATUS_OK);
  if (devices == 0) return;
  cublas::Handle handle = nullptr;
  ASSERT_EQ(api.create(&handle), cublas::kSuccess);
  EXPECT_NE(handle, nullptr);
  EXPECT_EQ(api.destroy(handle), cublas::kSuccess);
}

}  // namespace
}  // namespace moecutlass
