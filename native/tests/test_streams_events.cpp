// Streams and events on the CPU backend: synchronous semantics, wall-clock elapsed time, never-recorded events,
// and context-wide queries.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "test_support.hpp"

using mctest::Context;

TEST(StreamsEvents, CpuStreamsAreSynchronousAndHaveNoNativeHandle) {
  Context context(1);
  mc_stream stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  void* native = reinterpret_cast<void*>(uintptr_t{0x10});
  MC_ASSERT_OK(mc_stream_get_native(stream, &native));
  EXPECT_EQ(native, nullptr);
  MC_ASSERT_OK(mc_stream_synchronize(stream));
  MC_EXPECT_STATUS(mc_stream_get_native(stream, nullptr), MC_STATUS_NULL_POINTER, "native_stream is NULL");
  MC_ASSERT_OK(mc_stream_destroy(stream));
  MC_EXPECT_STATUS(mc_stream_destroy(stream), MC_STATUS_INVALID_HANDLE);
}

TEST(StreamsEvents, ElapsedTimeMeasuresWallClockBetweenRecords) {
  Context context(1);
  mc_stream stream = nullptr;
  mc_event start = nullptr, end = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  MC_ASSERT_OK(mc_event_create(context, &start));
  MC_ASSERT_OK(mc_event_create(context, &end));
  MC_ASSERT_OK(mc_event_record(start, nullptr));  // default stream
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  MC_ASSERT_OK(mc_event_record(end, stream));
  EXPECT_EQ(mc_event_query(end), MC_STATUS_OK);  // never NOT_READY on the CPU
  MC_ASSERT_OK(mc_event_synchronize(end));
  float ms = 0.0f;
  MC_ASSERT_OK(mc_event_elapsed_ms(start, end, &ms));
  EXPECT_GE(ms, 29.0f);
  EXPECT_LT(ms, 5000.0f);
  MC_EXPECT_STATUS(mc_event_elapsed_ms(start, end, nullptr), MC_STATUS_NULL_POINTER, "milliseconds is NULL");
  MC_ASSERT_OK(mc_event_destroy(start));
  MC_ASSERT_OK(mc_event_destroy(end));
  MC_ASSERT_OK(mc_stream_destroy(stream));
}

TEST(StreamsEvents, ElapsedTimeNeedsBothEventsRecorded) {
  Context context(1);
  mc_event start = nullptr, end = nullptr;
  MC_ASSERT_OK(mc_event_create(context, &start));
  MC_ASSERT_OK(mc_event_create(context, &end));
  float ms = -1.0f;
  MC_EXPECT_STATUS(mc_event_elapsed_ms(start, end, &ms), MC_STATUS_INVALID_ARGUMENT, "start = 0x",
                   "was never recorded");
  MC_ASSERT_OK(mc_event_record(start, nullptr));
  MC_EXPECT_STATUS(mc_event_elapsed_ms(start, end, &ms), MC_STATUS_INVALID_ARGUMENT, "end = 0x",
                   "was never recorded");
  EXPECT_EQ(ms, -1.0f);
  MC_ASSERT_OK(mc_event_record(end, nullptr));
  MC_ASSERT_OK(mc_event_elapsed_ms(start, end, &ms));
  EXPECT_GE(ms, 0.0f);
}

TEST(StreamsEvents, ContextQueriesOnTheCpu) {
  Context context(2);
  int32_t flags = -1;
  MC_ASSERT_OK(mc_context_query_device_errors(context, 1, &flags));
  EXPECT_EQ(flags, 0);
  MC_EXPECT_STATUS(mc_context_query_device_errors(context, 0, nullptr), MC_STATUS_NULL_POINTER, "flags is NULL");
  MC_ASSERT_OK(mc_context_synchronize(context));
  mc_context_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_context_get_info(context, &info));
  EXPECT_EQ(info.cpu_threads, 2);
  EXPECT_EQ(info.usable, 1);
}
